"""Reading the rolling aggregates: a window's rows per route and node, engine series, events.

A window (5 min, 1 h, 24 h) is its tier's buckets from `window_ids`. Buckets that can no
longer change ("final": closed, and past the replicas' last flush) are summed once into a
`SlidingWindow` — added when they become final, subtracted when they leave the window —
so a dashboard refresh merges only the few buckets still changing, however long the
window and however many series it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from megacity.observability.rolling import (
    OTHER,
    Bucket,
    Cell,
    EventKey,
    Hist,
    Tier,
    quantiles,
    window_ids,
)


@dataclass
class Row:
    """Aggregates of one group over a window; latencies in milliseconds."""

    requests: int
    rate: float  # requests per second
    errors: int
    error_rate: float  # 5xx / requests
    rejected: int  # 4xx
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tokens: int = 0  # LLM tokens the engines reported (prompt + completion)


@dataclass
class Series:
    """One engine's figures per bucket: start time (s), rate, error rate, p95 (ms)."""

    times: list[int] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)
    error_rate: list[float | None] = field(default_factory=list)
    p95_ms: list[float | None] = field(default_factory=list)


@dataclass
class WindowSummary:
    """A window's traffic per engine/model/zone and per node, engine series and events."""

    window: str
    span_s: float
    total: Row
    routes: dict[tuple[str, str, str], Row]  # (engine, model, zone)
    nodes: dict[str, Row]
    series: dict[str, Series]  # per engine
    events: dict[EventKey, int]
    groups: dict[str, Row] = field(default_factory=dict)  # per user group, busiest first


Group = Any  # a route (engine, model, zone), a node name, a user group, or the total
SHOWN_GROUPS = 20  # user groups a window lists; the quieter ones are summed as "other"


@dataclass
class BucketTotals:
    """One bucket id over every replica, grouped as the dashboard shows it: per route
    (engine, model, zone), per node, per user group, the total, per engine (the charts),
    and events."""

    groups: dict[Group, Cell] = field(default_factory=dict)
    engines: dict[str, Cell] = field(default_factory=dict)
    events: dict[EventKey, int] = field(default_factory=dict)
    point: dict[str, tuple[float, float | None, float | None]] | None = None  # chart cache

    @classmethod
    def of(cls, buckets: Iterable[Bucket]) -> BucketTotals:
        totals = cls()
        groups = totals.groups
        for bucket in buckets:
            for key, cell in bucket.cells.items():
                _into(groups, ("route", *key[:3]), cell)
                if key[3]:
                    _into(groups, ("node", key[3]), cell)
            for ekey, n in bucket.events.items():
                totals.events[ekey] = totals.events.get(ekey, 0) + n
            for name, cell in bucket.groups.items():
                _into(groups, ("group", name), cell)
        for group, cell in list(groups.items()):  # fewer routes than series: sum those
            if group[0] == "route":
                _into(totals.engines, group[1], cell)
                _into(groups, ("total",), cell)
        return totals

    def points(self, step_s: int) -> dict[str, tuple[float, float | None, float | None]]:
        """Per engine: rate, error rate, p95 ms of this bucket (kept once the bucket is final)."""
        if self.point is not None:
            return self.point
        found: dict[str, tuple[float, float | None, float | None]] = {}
        for name, cell in self.engines.items():
            if cell.count:
                p95 = _ms(cell.lat, cell.count, (0.95,))[0]
                found[name] = (
                    round(cell.count / step_s, 4),
                    round(cell.errors / cell.count, 4),
                    p95,
                )
        return found


class SlidingWindow:
    """The running sum of a tier's final buckets inside its window."""

    def __init__(self, tier: Tier) -> None:
        self.tier = tier
        self.final: dict[int, BucketTotals] = {}
        self._groups: dict[Group, Cell] = {}
        self._events: dict[EventKey, int] = {}

    def missing(self, first: int, final_last: int) -> list[int]:
        """Final bucket ids of the window not summed yet (the caller reads them once)."""
        return [bid for bid in range(first, final_last + 1) if bid not in self.final]

    def slide(self, first: int, final_last: int, fetched: dict[int, BucketTotals]) -> None:
        """Subtract the buckets that left the window, add the ones that became final."""
        for bid in [b for b in self.final if b < first]:
            gone = self.final.pop(bid)
            for group, cell in gone.groups.items():
                kept = self._groups[group]
                kept.subtract(cell)
                if not kept.count and not kept.ttft_count:
                    del self._groups[group]
            for ekey, n in gone.events.items():
                left = self._events.get(ekey, 0) - n
                if left > 0:
                    self._events[ekey] = left
                else:
                    self._events.pop(ekey, None)
        for bid, totals in fetched.items():
            if first <= bid <= final_last and bid not in self.final:
                totals.point = totals.points(self.tier.step_s)
                self.final[bid] = totals
                for group, cell in totals.groups.items():
                    _into(self._groups, group, cell)
                for ekey, n in totals.events.items():
                    self._events[ekey] = self._events.get(ekey, 0) + n

    def summary(self, now: float, fresh: dict[int, BucketTotals]) -> WindowSummary:
        """The window: the final sum plus the buckets still changing (`fresh`)."""
        tier = self.tier
        first, last = window_ids(tier, now)
        groups = dict(self._groups)  # shared cells; one is copied before fresh counts join it
        copied: set[Group] = set()
        events = dict(self._events)
        for bid, totals in fresh.items():
            if not first <= bid <= last or bid in self.final:
                continue
            for group, cell in totals.groups.items():
                if group not in copied:
                    kept = groups.get(group)
                    groups[group] = kept.copy() if kept is not None else Cell()
                    copied.add(group)
                groups[group].merge(cell)
            for ekey, n in totals.events.items():
                events[ekey] = events.get(ekey, 0) + n
        span = max(now - first * tier.step_s, 1.0)
        routes = {g[1:]: _row(c, span) for g, c in groups.items() if g[0] == "route"}
        nodes = {g[1]: _row(c, span) for g, c in groups.items() if g[0] == "node"}
        users = _top_groups({g[1]: c for g, c in groups.items() if g[0] == "group"}, span)

        def points(bid: int) -> dict[str, tuple[float, float | None, float | None]]:
            found = self.final.get(bid) or fresh.get(bid)
            return found.points(tier.step_s) if found is not None else {}

        return WindowSummary(
            window=tier.name,
            span_s=span,
            total=_row(groups.get(("total",)) or Cell(), span),
            routes=dict(sorted(routes.items())),
            nodes=dict(sorted(nodes.items())),
            series=_series(tier, first, last, points),
            events=events,
            groups=users,
        )


def summarize(
    tier: Tier, now: float, buckets: Iterable[tuple[int, Iterable[Bucket]]]
) -> WindowSummary:
    """A window from raw buckets (each id may hold one per replica), nothing kept."""
    fresh = {bid: BucketTotals.of(sources) for bid, sources in buckets}
    return SlidingWindow(tier).summary(now, fresh)


def _into(acc: dict[Any, Cell], key: Any, cell: Cell) -> None:
    into = acc.get(key)
    if into is None:
        into = acc[key] = Cell()
    into.merge(cell)


def _top_groups(cells: dict[str, Cell], span_s: float) -> dict[str, Row]:
    """At most `SHOWN_GROUPS` user groups, busiest first; past that, the quieter ones are
    summed under "other" (with any "other" the buckets already held)."""
    ranked = sorted(cells.items(), key=lambda item: (-item[1].count, item[0]))
    if len(ranked) > SHOWN_GROUPS:
        named = [(n, c) for n, c in ranked if n != OTHER]
        rest = Cell()
        for _, cell in named[SHOWN_GROUPS - 1 :]:
            rest.merge(cell)
        if OTHER in cells:
            rest.merge(cells[OTHER])
        ranked = [*named[: SHOWN_GROUPS - 1], (OTHER, rest)]
    return {name: _row(cell, span_s) for name, cell in ranked}


def _ms(hist: Hist, total: int, qs: tuple[float, ...]) -> list[float | None]:
    """Quantiles in milliseconds (2 decimals)."""
    return [None if v is None else round(v * 1000, 2) for v in quantiles(hist, total, qs)]


def _row(cell: Cell, span_s: float) -> Row:
    p50, p95, p99 = _ms(cell.lat, cell.count, (0.5, 0.95, 0.99))
    t50, t95 = _ms(cell.ttft, cell.ttft_count, (0.5, 0.95))
    return Row(
        requests=cell.count,
        rate=round(cell.count / span_s, 4),
        errors=cell.errors,
        error_rate=round(cell.errors / cell.count, 4) if cell.count else 0.0,
        rejected=cell.rejected,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        ttft_p50_ms=t50,
        ttft_p95_ms=t95,
        tokens=cell.tokens,
    )


def _series(
    tier: Tier,
    first: int,
    last: int,
    points_of: Callable[[int], dict[str, tuple[float, float | None, float | None]]],
) -> dict[str, Series]:
    per_bucket = [(bid, points_of(bid)) for bid in range(first, last + 1)]
    names = sorted({name for _, found in per_bucket for name in found})
    out: dict[str, Series] = {name: Series() for name in names}
    for bid, found in per_bucket:
        for name, series in out.items():
            rate, error_rate, p95 = found.get(name, (0.0, None, None))
            series.times.append(bid * tier.step_s)
            series.rate.append(rate)
            series.error_rate.append(error_rate)
            series.p95_ms.append(p95)
    return out

"""Rolling request aggregates: rate, errors, latency and TTFT percentiles over 5 min, 1 h, 24 h.

Kept in the router and cheap enough for the request path: one `record` is a dict lookup
and a few integer increments in the current bucket of three tiers (10 s buckets for the
5-minute window, 1 min for the hour, 10 min for the day). Latencies go into log-spaced
histogram bins (ratio 2^(1/4): a quantile is off by at most ±9 %), so percentiles merge
across buckets — and across replicas (`observability/replicas.py`) — exactly as counts do.
Bucket boundaries are wall-clock multiples of the step, so every replica's buckets line up.

Usage is also kept per user group (a token's `group` claim, "-" without one): requests,
errors, latency and the LLM tokens the engines reported. A group name is the admin's choice,
not the caller's, but a bucket still names at most `MAX_GROUPS` of them; the rest count
under "other".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# Latency histogram: bin b holds [BASE·R^b, BASE·R^(b+1)) seconds; bin 0 also takes anything
# faster, the last bin anything slower (100 bins reach ~56 min).
BASE_S = 1e-4
RATIO = 2**0.25
BINS = 100
_LOG_RATIO = math.log(RATIO)
MAX_KEYS = 5000  # series per bucket; past it, new series are counted under "other"
MAX_GROUPS = 100  # named user groups per bucket; past it, new groups count under "other"
NO_GROUP = "-"  # a caller whose credential names no group
OTHER = "other"

Key = tuple[str, str, str, str]  # engine, model, zone, node
EventKey = tuple[str, ...]  # ("safety", check, outcome, zone), ("failover", model, node) …
Hist = dict[int, int]


@dataclass(frozen=True, slots=True)
class Tier:
    """Buckets of `step_s` seconds, enough of them kept to answer a `span_s` window."""

    name: str
    step_s: int
    span_s: int

    @property
    def keep(self) -> int:
        return self.span_s // self.step_s + 2


TIERS = (Tier("5m", 10, 300), Tier("1h", 60, 3600), Tier("24h", 600, 86_400))
WINDOWS = {t.name: t for t in TIERS}


def latency_bin(seconds: float) -> int:
    """The histogram bin of a duration (seconds)."""
    if seconds <= BASE_S:
        return 0
    return min(int(math.log(seconds / BASE_S) / _LOG_RATIO), BINS - 1)


def quantiles(hist: Hist, total: int, qs: Sequence[float]) -> list[float | None]:
    """Quantiles (`qs` ascending, 0..1) of a histogram in seconds, interpolated in their bin."""
    if total <= 0 or not hist:
        return [None] * len(qs)
    items = sorted(hist.items())
    out: list[float | None] = []
    i = seen = 0
    for q in qs:
        rank = q * total
        while i < len(items) and seen + items[i][1] < rank:
            seen += items[i][1]
            i += 1
        if i == len(items):
            out.append(float(BASE_S * RATIO ** (items[-1][0] + 1)))
            continue
        b, n = items[i]
        out.append(float(BASE_S * RATIO ** (b + ((rank - seen) / n if n else 0.0))))
    return out


def quantile(hist: Hist, total: int, q: float) -> float | None:
    """The q-quantile (0..1) of a histogram in seconds."""
    return quantiles(hist, total, (q,))[0]


class Cell:
    """Requests of one series in one bucket: counts and two latency histograms."""

    __slots__ = ("count", "errors", "lat", "rejected", "tokens", "ttft", "ttft_count")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0  # answered 5xx
        self.rejected = 0  # answered 4xx
        self.lat: Hist = {}
        self.ttft: Hist = {}
        self.ttft_count = 0
        self.tokens = 0  # LLM tokens (prompt + completion) the engines reported

    def add(self, status: int, lbin: int, tbin: int, tokens: int = 0) -> None:
        self.count += 1
        self.tokens += tokens
        if status >= 500:
            self.errors += 1
        elif status >= 400:
            self.rejected += 1
        lat = self.lat
        lat[lbin] = lat.get(lbin, 0) + 1
        if tbin >= 0:
            self.ttft_count += 1
            self.ttft[tbin] = self.ttft.get(tbin, 0) + 1

    def merge(self, other: Cell) -> None:
        self.count += other.count
        self.errors += other.errors
        self.rejected += other.rejected
        self.ttft_count += other.ttft_count
        self.tokens += other.tokens
        _merge(self.lat, other.lat)
        if other.ttft:
            _merge(self.ttft, other.ttft)

    def subtract(self, other: Cell) -> None:
        """Undo a `merge` of `other` (a bucket leaving a sliding window)."""
        self.count -= other.count
        self.errors -= other.errors
        self.rejected -= other.rejected
        self.ttft_count -= other.ttft_count
        self.tokens -= other.tokens
        _unmerge(self.lat, other.lat)
        _unmerge(self.ttft, other.ttft)

    def copy(self) -> Cell:
        cell = Cell()
        cell.merge(self)
        return cell

    def to_list(self) -> list[Any]:
        cells = [self.count, self.errors, self.rejected, self.ttft_count, self.lat, self.ttft]
        return [*cells, self.tokens] if self.tokens else cells

    @classmethod
    def from_list(cls, data: list[Any]) -> Cell:
        cell = cls()
        cell.count, cell.errors, cell.rejected, cell.ttft_count = (int(v) for v in data[:4])
        cell.lat = {int(b): int(n) for b, n in data[4].items()}
        cell.ttft = {int(b): int(n) for b, n in data[5].items()}
        cell.tokens = int(data[6]) if len(data) > 6 else 0  # a replica of an older version
        return cell


def _merge(into: Hist, other: Hist) -> None:
    for b, n in other.items():
        into[b] = into.get(b, 0) + n


def _unmerge(into: Hist, other: Hist) -> None:
    for b, n in other.items():
        left = into.get(b, 0) - n
        if left > 0:
            into[b] = left
        else:
            into.pop(b, None)


@dataclass
class Bucket:
    """One tier's bucket: a cell per series, a cell per user group and a count per event."""

    cells: dict[Key, Cell] = field(default_factory=dict)
    events: dict[EventKey, int] = field(default_factory=dict)
    groups: dict[str, Cell] = field(default_factory=dict)

    def group(self, name: str) -> Cell:
        """The cell of a user group; once `MAX_GROUPS` groups are named, the "other" one."""
        cell = self.groups.get(name)
        if cell is None:
            if len(self.groups) - (OTHER in self.groups) >= MAX_GROUPS:
                name = OTHER
                cell = self.groups.get(name)
            if cell is None:
                cell = self.groups[name] = Cell()
        return cell

    def cell(self, key: Key) -> Cell:
        cell = self.cells.get(key)
        if cell is None:
            if len(self.cells) >= MAX_KEYS:
                key = (key[0], "other", "other", "other")
                cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = Cell()
        return cell

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (histogram bins become string keys in JSON; `from_json` undoes it)."""
        return {
            "c": [[*k, *c.to_list()] for k, c in self.cells.items()],
            "e": [[*k, n] for k, n in self.events.items()],
            "g": [[g, *c.to_list()] for g, c in self.groups.items()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bucket:
        bucket = cls()
        for row in data.get("c", ()):
            bucket.cells[(row[0], row[1], row[2], row[3])] = Cell.from_list(row[4:])
        for row in data.get("e", ()):
            bucket.events[tuple(str(v) for v in row[:-1])] = int(row[-1])
        for row in data.get("g", ()):  # past this replica's cap, groups join "other"
            bucket.group(str(row[0])).merge(Cell.from_list(row[1:]))
        return bucket


class RollingStats:
    """This process's buckets in every tier; `record` is on the request path."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tiers: list[dict[int, Bucket]] = [{} for _ in TIERS]
        # Per series and group: the 10 s bucket id and, in each tier's current bucket, the
        # series' cells then the group's.
        self._hot: dict[tuple[str, str, str, str, str], tuple[int, tuple[Cell, ...]]] = {}

    def record(
        self,
        engine: str,
        model: str,
        node: str,
        zone: str,
        status: int,
        seconds: float,
        ttft_s: float | None = None,
        group: str = NO_GROUP,
        tokens: int = 0,
    ) -> None:
        """Count one answered request (seconds to its last byte; TTFT for streams) for its
        series and its caller's user group (LLM `tokens` as the engine reported them)."""
        now = self._clock()
        hot_key = (engine, model, zone, node, group)
        hot = self._hot.get(hot_key)
        first = int(now // TIERS[0].step_s)
        if hot is None or hot[0] != first:
            key = (engine, model, zone, node)
            buckets = [self._bucket(i, now) for i in range(len(TIERS))]
            cells = (*(b.cell(key) for b in buckets), *(b.group(group) for b in buckets))
            hot = (first, cells)
            self._hot[hot_key] = hot
        lbin = latency_bin(seconds)
        tbin = -1 if ttft_s is None else latency_bin(ttft_s)
        for cell in hot[1]:
            cell.add(status, lbin, tbin, tokens)

    def event(self, key: EventKey) -> None:
        """Count one event (a failover, a safety decision, an upstream error)."""
        now = self._clock()
        for i in range(len(TIERS)):
            events = self._bucket(i, now).events
            events[key] = events.get(key, 0) + 1

    def _bucket(self, tier: int, now: float) -> Bucket:
        buckets = self._tiers[tier]
        spec = TIERS[tier]
        bid = int(now // spec.step_s)
        bucket = buckets.get(bid)
        if bucket is None:
            bucket = buckets[bid] = Bucket()
            for old in [b for b in buckets if b <= bid - spec.keep]:
                del buckets[old]
            if tier == 0:
                self._hot.clear()  # a new 10 s bucket: every series looks its cells up again
        return bucket

    def now(self) -> float:
        return self._clock()

    def buckets(self, tier: Tier, first: int, last: int) -> Iterator[tuple[int, Bucket]]:
        """This process's buckets of `tier` with ids first..last (those that exist)."""
        buckets = self._tiers[TIERS.index(tier)]
        for bid in range(first, last + 1):
            bucket = buckets.get(bid)
            if bucket is not None:
                yield bid, bucket


def window_ids(tier: Tier, now: float) -> tuple[int, int]:
    """The first and last bucket id of a tier's window ending now (the last one is partial)."""
    last = int(now // tier.step_s)
    return last - tier.span_s // tier.step_s + 1, last

"""The dashboard's data: nodes (every replica's view merged), traffic, events, jobs, registry.

One `overview()` call is one board snapshot; the JSON endpoint and the HTML panels both
show its result, so what a script reads and what a person sees are the same figures.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from megacity.api.services import Services
from megacity.observability.replicas import Snapshot
from megacity.observability.rolling import WINDOWS
from megacity.observability.windows import Row, Series, WindowSummary

if TYPE_CHECKING:
    from megacity.jobs.stats import QueueStats

JOBS_CACHE_S = 2.0  # many open dashboards refresh every few seconds: one query per 2 s


class JobsCache:
    """The queue panel's last answer per window, re-read at most every JOBS_CACHE_S."""

    def __init__(self) -> None:
        self._cached: dict[str, tuple[float, QueueStats]] = {}
        self._lock = asyncio.Lock()

    async def get(self, services: Services, window: str) -> QueueStats:
        async with self._lock:
            hit = self._cached.get(window)
            if hit is not None and time.monotonic() - hit[0] < JOBS_CACHE_S:
                return hit[1]
            from megacity.jobs.stats import queue_stats  # the queue and its database

            stats = await queue_stats(services.jobs, WINDOWS[window].span_s)
            self._cached[window] = (time.monotonic(), stats)
            return stats


async def overview(services: Services, window: str, jobs: JobsCache) -> dict[str, Any]:
    """Everything the dashboard shows for one window (5m, 1h, 24h), JSON-ready."""
    tier = WINDOWS[window]
    snapshot = await services.board.snapshot(tier)
    summary = snapshot.summary
    queue = await jobs.get(services, window)
    return {
        "window": window,
        "generated_at": datetime.fromtimestamp(snapshot.now, UTC).isoformat(),
        "replica": snapshot.replica,
        "shared": snapshot.shared,
        "replicas": snapshot.replicas or [snapshot.replica],
        "problem": snapshot.problem,
        "nodes": merged_nodes(services, snapshot, summary),
        "traffic": traffic(summary),
        "events": events(summary),
        "jobs": jobs_view(queue, snapshot.now),
    }


def merged_nodes(
    services: Services, snapshot: Snapshot, summary: WindowSummary
) -> list[dict[str, Any]]:
    """One row per node: this replica's view (else another's), what every replica says about
    its health, the worst breaker, the newest error, and the window's traffic."""
    registry = services.registry
    by_node: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for replica, views in snapshot.nodes.items():
        for view in views:
            by_node.setdefault(view["name"], []).append((replica, view))
    rows = []
    for name, seen in by_node.items():
        own = next((v for r, v in seen if r == snapshot.replica), seen[0][1])
        row = dict(own)
        down_on = [r for r, v in seen if not v["healthy"] or v["breaker"] == "open"]
        wobbly = [r for r, v in seen if v["breaker"] == "half_open"]
        row["status"] = (
            "down" if len(down_on) == len(seen) else "degraded" if down_on or wobbly else "ok"
        )
        row["down_on"] = down_on if 0 < len(down_on) < len(seen) else []
        worst = max(seen, key=lambda rv: _BREAKER_RANK.get(rv[1]["breaker"], 0))[1]
        row["breaker"] = worst["breaker"]
        row["consecutive_failures"] = max(v["consecutive_failures"] for _, v in seen)
        sick = [v for _, v in seen if not v["healthy"]]
        if own["healthy"] and sick:  # another replica's probe fails: say why
            row["health_reason"] = sick[0]["health_reason"]
        elif own["healthy"] and row["breaker"] != "closed":
            row["health_reason"] = "probe ok, but requests to it fail (breaker)"
        errors = [v for _, v in seen if v.get("last_error")]
        if errors:
            newest = max(errors, key=lambda v: v.get("last_error_at") or 0)
            row["last_error"], row["last_error_at"] = newest["last_error"], newest["last_error_at"]
        row["last_error_age"] = _age(row.get("last_error_at"), snapshot.now)
        row["in_flight"] = sum(v["in_flight"] for _, v in seen)
        row["replicas"] = {r: {"healthy": v["healthy"], "breaker": v["breaker"]} for r, v in seen}
        row["model_versions"] = [
            {"name": m, "version": registry.resolve(m).version if m in registry else None}
            for m in own["models"]
        ]
        traffic_row = summary.nodes.get(name)
        row["traffic"] = _plain(traffic_row) if traffic_row is not None else None
        rows.append(row)
    order = {n: i for i, n in enumerate(services.balancer.nodes)}
    rows.sort(key=lambda r: (r["engine"], order.get(r["name"], len(order)), r["name"]))
    return rows


_BREAKER_RANK = {"closed": 0, "half_open": 1, "open": 2}


def traffic(summary: WindowSummary) -> dict[str, Any]:
    zones: dict[str, dict[str, Any]] = {}
    for (_, _, zone), row in summary.routes.items():
        z = zones.setdefault(
            zone, {"zone": zone, "requests": 0, "errors": 0, "rejected": 0, "tokens": 0}
        )
        z["requests"] += row.requests
        z["errors"] += row.errors
        z["rejected"] += row.rejected
        z["tokens"] += row.tokens
    total = max(summary.total.requests, 1)
    return {
        "span_s": round(summary.span_s, 1),
        "total": _plain(summary.total),
        "routes": [
            {"engine": e, "model": m, "zone": z, **_plain(row)}
            for (e, m, z), row in summary.routes.items()
        ],
        "zones": sorted(zones.values(), key=lambda z: -z["requests"]),
        # busiest first; "share" is of the window's requests (the table's bars)
        "groups": [
            {"group": g, "share": round(row.requests / total, 4), **_plain(row)}
            for g, row in summary.groups.items()
        ],
        "series": {engine: _plain(s) for engine, s in summary.series.items()},
    }


def events(summary: WindowSummary) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {"failovers": [], "upstream_errors": [], "safety": []}
    for key, count in summary.events.items():
        if key[0] == "failover" and len(key) == 3:
            found["failovers"].append({"model": key[1], "node": key[2], "count": count})
        elif key[0] == "upstream_error" and len(key) == 3:
            found["upstream_errors"].append({"node": key[1], "kind": key[2], "count": count})
        elif key[0] == "safety" and len(key) == 4:
            found["safety"].append(
                {"check": key[1], "outcome": key[2], "zone": key[3], "count": count}
            )
    for rows in found.values():
        rows.sort(key=lambda r: -int(r["count"]))
    return found


def jobs_view(queue: QueueStats, now: float) -> dict[str, Any]:
    return {
        "backend": queue.backend,
        "dead_letters": queue.dead_letters,
        "recent_dead": queue.recent_dead,
        "kinds": [
            {
                "kind": k.kind,
                "counts": k.counts,
                "oldest_queued_at": k.oldest_queued_at.isoformat() if k.oldest_queued_at else None,
                "oldest_queued_age": _age(_epoch(k.oldest_queued_at), now),
            }
            for k in queue.kinds
        ],
    }


def _plain(obj: Row | Series) -> dict[str, Any]:
    """A Row or Series as a dict (dataclasses.asdict deep-copies: slow for hundreds of rows)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _epoch(when: datetime | None) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:  # SQLite hands back naive UTC
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _age(when: float | None, now: float) -> str | None:
    """How long ago, in either language: '12 s', '3 min', '2.5 h' (None without a time)."""
    if not when:
        return None
    seconds = max(0.0, now - when)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

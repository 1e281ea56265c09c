"""The queue panel of the dashboard: per-kind counts from the table, dead letters from Redis."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from megacity.db.job_stats import KindStats, job_stats
from megacity.jobs.service import JobService


@dataclass
class QueueStats:
    """Per kind: queued, running, and the window's ended jobs; dead letters; the backend."""

    kinds: list[KindStats]
    backend: str  # "redis" (streams, `megacity worker`) or "embedded" (the router's worker)
    dead_letters: int | None = None  # entries in the dead-letter stream (Redis only)
    recent_dead: list[dict[str, str]] = field(default_factory=list)


async def queue_stats(jobs: JobService, window_s: float, recent: int = 5) -> QueueStats:
    """What the jobs table says now and over the last `window_s` seconds."""
    since = datetime.now(UTC) - timedelta(seconds=window_s)

    def read() -> list[KindStats]:
        with jobs.db.session() as session:
            return job_stats(session, since)

    kinds = await asyncio.to_thread(read)
    if jobs.queue is None:
        return QueueStats(kinds, "embedded")
    redis: Any = jobs.queue.redis
    dead = jobs.queue.keys.dead
    length, entries = await asyncio.gather(redis.xlen(dead), redis.xrevrange(dead, count=recent))
    return QueueStats(kinds, "redis", int(length), [dict(fields) for _, fields in entries])

"""The job queue at a glance: jobs waiting and running per kind, and how the window's ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from megacity.db.jobs import Executor, JobStatus
from megacity.db.models import Job

ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
ENDED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)


@dataclass
class KindStats:
    """One job kind: counts per status (ended ones within the window) and the oldest waiter."""

    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    oldest_queued_at: datetime | None = None


def job_stats(executor: Executor, since: datetime) -> list[KindStats]:
    """Queued and running jobs now, and jobs that ended since `since`, per kind.

    Both queries are served by an index that starts with the status, so the cost follows
    the jobs in play, not the table's whole history.
    """
    kinds: dict[str, KindStats] = {}
    active = (
        select(Job.kind, Job.status, func.count(), func.min(Job.created_at))
        .where(Job.status.in_(ACTIVE))
        .group_by(Job.kind, Job.status)
    )
    ended = (
        select(Job.kind, Job.status, func.count())
        .where(Job.status.in_(ENDED), Job.finished_at >= since)
        .group_by(Job.kind, Job.status)
    )
    for kind, status, count, oldest in executor.execute(active):
        stats = kinds.setdefault(kind, KindStats(kind))
        stats.counts[status] = int(count)
        if status == JobStatus.QUEUED.value:
            stats.oldest_queued_at = oldest
    for kind, status, count in executor.execute(ended):
        kinds.setdefault(kind, KindStats(kind)).counts[status] = int(count)
    return sorted(kinds.values(), key=lambda s: s.kind)

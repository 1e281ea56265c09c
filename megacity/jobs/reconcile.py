"""The reconciler: jobs the table says are waiting but that no queue message stands for.

A job is committed before it is published (a message must never point at a row that is
not there yet), so a publish can be lost: Redis unreachable for a moment, or the process
killed between the commit and the XADD. Every publish marks its job live in the same
script (keys.py), and only the end of a job takes the mark away; so a job that has been
waiting longer than a publish takes and is not live has lost its message, and is
published again. A message published twice is harmless: the row decides, and the second
delivery finds the job running or done.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.models import utcnow
from megacity.jobs.queue import RedisQueue
from megacity.jobs.runner import in_autocommit

log = logging.getLogger("megacity.jobs")

PAGE = 500  # rows per query and per Redis round trip
MAX_ROWS = 20_000  # looked at per run (a long backlog is live: it costs a ZMSCORE per page)


async def reconcile(
    db: Database, queue: RedisQueue, *, older_than_s: float, now: datetime | None = None
) -> int:
    """Publish again the jobs waiting for over `older_than_s` without a message; how many."""
    before = (now or utcnow()) - timedelta(seconds=older_than_s)
    after: repo.Waiting | None = None
    seen = republished = 0
    while seen < MAX_ROWS:
        waiting = await in_autocommit(db, repo.waiting_since, before, after=after, limit=PAGE)
        if not waiting:
            break
        seen += len(waiting)
        after = waiting[-1]
        live = await queue.live([w.id for w in waiting])
        lost = [w for w, is_live in zip(waiting, live, strict=True) if not is_live]
        if lost:
            republished += await queue.publish_many(
                [(w.id, w.kind, w.priority, w.region or queue.region) for w in lost]
            )
            log.warning(
                "jobs without a queue message published again",
                extra={"count": len(lost), "jobs": [w.id for w in lost[:20]]},
            )
    return republished

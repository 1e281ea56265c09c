"""RedisQueue: the job streams seen by one consumer — publish, read by priority, claim, settle.

A message only says "look at job X"; what to do with it is decided by the job's row.
A message is acknowledged only once the row no longer needs it (finished, cancelled,
or handed to the delayed set / dead-letter stream in the same atomic script), so a
worker that dies at any point leaves its messages pending, and another worker's
XAUTOCLAIM picks them up once they have been idle longer than the visibility timeout.

Queues are per region (keys.py): a consumer reads its own region's streams, and — after
`adopt` found that no worker of another region serves a kind queued there — that
region's streams too, after its own of the same priority.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from megacity.db.jobs import Priority
from megacity.db.models import utcnow
from megacity.jobs import keys as k
from megacity.jobs.keys import DEFAULT_REGION, Keys, queue_name

log = logging.getLogger("megacity.jobs")

Published = tuple[str, str, Priority, str]  # job id, kind, priority, region
_FORGET_MS = 24 * 3600 * 1000  # a consumer silent this long leaves the consumers set


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to this consumer: which stream, its entry id, and the job."""

    stream: str
    entry_id: str
    job_id: str


class RedisQueue:
    """The streams of the kinds this consumer serves, in priority order, its region's first."""

    def __init__(
        self, redis: Redis, keys: Keys, consumer: str = "submitter", region: str = DEFAULT_REGION
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.consumer = consumer
        self.region = region
        self.adopted: list[tuple[str, str]] = []  # (region, kind) read because no one else does
        self._publish = redis.register_script(k.PUBLISH)
        self._finish = redis.register_script(k.FINISH)
        self._retry_later = redis.register_script(k.RETRY_LATER)
        self._requeue = redis.register_script(k.REQUEUE)
        self._dead_letter = redis.register_script(k.DEAD_LETTER)
        self._move_due = redis.register_script(k.MOVE_DUE)

    async def ensure_groups(self, kinds: list[str], regions: Sequence[str] | None = None) -> None:
        """Create the consumer group on every stream of `kinds` (from the first entry)."""
        for region in regions or (self.region,):
            for priority in Priority:
                for stream in self.keys.streams(priority, kinds, region):
                    try:
                        await self.redis.xgroup_create(stream, k.GROUP, id="0", mkstream=True)
                    except ResponseError as exc:
                        if "BUSYGROUP" not in str(exc):
                            raise

    async def publish(
        self, job_id: str, kind: str, priority: Priority, region: str | None = None
    ) -> None:
        """Queue job `job_id` (its row must already be committed) and mark it live."""
        await self.publish_many([(job_id, kind, priority, region or self.region)])

    async def publish_many(self, jobs: Sequence[Published]) -> int:
        """Queue several committed jobs (id, kind, priority, region) in one round trip."""
        if not jobs:
            return 0
        streams = [self.keys.stream(p, kind, region) for _, kind, p, region in jobs]
        args: list[str | int] = [_ms(utcnow()), k.STREAM_MAXLEN, *(job for job, *_ in jobs)]
        args += [queue_name(region, kind) for _, kind, _, region in jobs]
        done: Any = await self._publish(
            keys=[self.keys.live, self.keys.queues, *streams], args=args
        )
        return int(done)

    async def live(self, job_ids: list[str]) -> list[bool]:
        """Whether each job has a message (in a stream or the delayed set)."""
        if not job_ids:
            return []
        scores: Any = await self.redis.zmscore(self.keys.live, job_ids)
        return [score is not None for score in scores]

    def _streams(self, priority: Priority, kinds: list[str]) -> list[str]:
        """This priority's streams to read: this region's, then the adopted ones."""
        own = self.keys.streams(priority, kinds, self.region)
        return own + [self.keys.stream(priority, kind, r) for r, kind in self.adopted]

    async def read(self, kinds: list[str], count: int, block_ms: int) -> list[Delivery]:
        """New messages, highest priority first; blocks up to `block_ms` when all are empty.

        The blocking read covers this region's streams only: an adopted queue is looked
        at between two blocks, so giving it back takes effect at once (no read in flight
        still holds it).
        """
        for priority in Priority:
            found = await self._xread(self._streams(priority, kinds), count, None)
            if found:
                return found
        streams = [s for p in Priority for s in self.keys.streams(p, kinds, self.region)]
        return await self._xread(streams, count, block_ms)

    async def _xread(self, streams: list[str], count: int, block: int | None) -> list[Delivery]:
        reply: Any = await self.redis.xreadgroup(
            k.GROUP, self.consumer, dict.fromkeys(streams, ">"), count=count, block=block
        )
        return _deliveries(reply or [])

    async def autoclaim(self, kinds: list[str], min_idle_ms: int, count: int) -> list[Delivery]:
        """Messages other consumers left idle over `min_idle_ms` (dead workers), now ours."""
        found: list[Delivery] = []
        for priority in Priority:
            for stream in self._streams(priority, kinds):
                if len(found) >= count:
                    return found
                reply: Any = await self.redis.xautoclaim(
                    stream, k.GROUP, self.consumer, min_idle_ms, "0-0", count=count - len(found)
                )
                found += _deliveries([[stream, reply[1]]])
        return found

    async def adopt(self, kinds: list[str], stale_s: float) -> list[tuple[str, str]]:
        """Say this region serves `kinds`; adopt the other regions' queues of those kinds
        that no worker has served for `stale_s` (and give back those served again)."""
        now = int(time.time() * 1000)
        await self.redis.zadd(self.keys.workers, {queue_name(self.region, kd): now for kd in kinds})
        await self.redis.zadd(self.keys.consumers, {queue_name(self.region, self.consumer): now})
        await self.redis.zremrangebyscore(self.keys.consumers, "-inf", now - _FORGET_MS)
        queued: Any = await self.redis.smembers(self.keys.queues)  # type: ignore[misc]
        others = sorted(
            (region, kind)
            for region, _, kind in (str(q).partition(" ") for q in queued)
            if kind in kinds and region != self.region
        )
        seen: Any = (
            await self.redis.zmscore(self.keys.workers, [queue_name(*q) for q in others])
            if others
            else []
        )
        orphans = [
            q for q, at in zip(others, seen, strict=True) if at is None or at < now - stale_s * 1000
        ]
        for region, kind in sorted(set(orphans) - set(self.adopted)):
            await self.ensure_groups([kind], [region])
            log.warning(
                "no worker serves this region's queue: adopted",
                extra={"region": region, "kind": kind, "by_region": self.region},
            )
        for region, kind in sorted(set(self.adopted) - set(orphans)):
            log.info(
                "a region's queue has its own workers again", extra={"region": region, "kind": kind}
            )
        self.adopted = orphans
        return orphans

    async def touch(self, deliveries: list[Delivery]) -> None:
        """Reset the idle time of messages this consumer holds (it is alive and working)."""
        by_stream: dict[str, list[Any]] = {}
        for d in deliveries:
            by_stream.setdefault(d.stream, []).append(d.entry_id)
        for stream, ids in by_stream.items():
            await self.redis.xclaim(stream, k.GROUP, self.consumer, 0, ids, justid=True)

    async def ack(self, d: Delivery) -> None:
        """Acknowledge: the job is finished (or gone), it needs no message any more."""
        await self._finish(keys=[d.stream, self.keys.live], args=[k.GROUP, d.job_id, d.entry_id])

    async def retry_later(self, d: Delivery, due: datetime) -> None:
        """Acknowledge, and queue the job again once `due` has passed (the delayed set)."""
        due_ms = _ms(due)
        member = d.job_id + d.stream
        await self._retry_later(
            keys=[d.stream, self.keys.delayed], args=[d.entry_id, due_ms, member, k.GROUP]
        )

    async def requeue(self, d: Delivery) -> None:
        """Acknowledge, and queue the job again at once (a worker giving it back)."""
        args: list[str | int] = [d.entry_id, d.job_id, k.GROUP, k.STREAM_MAXLEN]
        await self._requeue(keys=[d.stream], args=args)

    async def dead_letter(self, d: Delivery, kind: str, error: dict[str, str] | None) -> None:
        """Acknowledge, and record the job in the dead-letter stream."""
        error = error or {}
        fields = ["job", d.job_id, "kind", kind]
        fields += ["code", error.get("code", ""), "message", error.get("message", "")]
        args: list[str | int] = [d.entry_id, k.GROUP, k.STREAM_MAXLEN, *fields]
        await self._dead_letter(keys=[d.stream, self.keys.dead, self.keys.live], args=args)

    async def move_due(self, now: datetime, batch: int = 100) -> int:
        """Move jobs whose backoff is over from the delayed set into their streams."""
        args = [_ms(now), batch, k.JOB_ID_LENGTH, k.STREAM_MAXLEN]
        moved: Any = await self._move_due(keys=[self.keys.delayed], args=args)
        return int(moved)

    async def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        """The newest dead-letter entries, oldest first (for operators and tests)."""
        entries: Any = await self.redis.xrange(self.keys.dead, count=count)
        return [dict(fields) for _, fields in entries]


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _deliveries(reply: list[Any]) -> list[Delivery]:
    found = []
    for stream, entries in reply:
        for entry_id, fields in entries:
            if fields and fields.get("job"):  # None: an entry deleted since (trimmed)
                found.append(Delivery(stream, entry_id, fields["job"]))
    return found

"""Worker: runs jobs from the Redis streams, any number of them on any number of machines.

Each worker is one consumer of the group. Between reads it moves due retries out of the
delayed set and claims messages idle for longer than the lease (their worker died).
`stop()` stops reading, lets running jobs finish for `grace_s`, then releases the rest
back to the queue.

A worker serves its region's queues. Every `beat_s` it says so in Redis and looks for
queues of other regions that nobody served for `adopt_s`, which it then reads too, after
its own (queue.py `adopt`): a region without workers loses no job, it runs elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.jobs import Claim
from megacity.db.models import utcnow
from megacity.jobs.handlers import Handlers
from megacity.jobs.keys import DEFAULT_REGION, Keys
from megacity.jobs.queue import Delivery, RedisQueue
from megacity.jobs.runner import Outcome, Policy, in_autocommit, run_job

log = logging.getLogger("megacity.jobs")
_ERROR_PAUSE_MAX_S = 5.0
BEAT_S = 2.0  # how often a worker says its region is served, and looks for orphans


def consumer_name() -> str:
    """host-pid-random: unique per worker, readable in XINFO CONSUMERS."""
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


class Worker:
    """One consumer running up to `concurrency` jobs at once."""

    def __init__(
        self,
        db: Database,
        redis: Redis,
        handlers: Handlers,
        *,
        keys: Keys,
        policy: Policy,
        concurrency: int = 1,
        grace_s: float = 10.0,
        block_ms: int = 1000,
        consumer: str | None = None,
        region: str = DEFAULT_REGION,
        adopt_s: float = 10.0,
        beat_s: float = BEAT_S,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not 0 < 2 * beat_s <= adopt_s:
            raise ValueError("adopt_s must be at least two beats (beat_s): else queues flap")
        self.db = db
        self.handlers = handlers
        self.kinds = handlers.kinds
        self.policy = policy
        self.concurrency = concurrency
        self.grace_s = grace_s
        self.block_ms = max(1, min(block_ms, int(policy.lease_s * 500)))
        self.queue = RedisQueue(redis, keys, consumer or consumer_name(), region)
        self.adopt_s = adopt_s
        self.beat_s = beat_s
        self._stopping = asyncio.Event()
        self._running: dict[asyncio.Task[None], Delivery] = {}
        self._backlog: list[Delivery] = []  # read while all slots were busy
        self._maintained = 0.0

    def stop(self) -> None:
        """Stop taking jobs (safe from a signal handler); `run()` returns once settled."""
        self._stopping.set()

    async def run(self) -> None:
        """Serve until `stop()`."""
        await self.queue.ensure_groups(self.kinds)
        log.info(
            "worker started",
            extra={
                "consumer": self.queue.consumer,
                "kinds": self.kinds,
                "region": self.queue.region,
            },
        )
        beats = asyncio.create_task(self._beat(), name="megacity-worker-beat")
        pause = 0.1
        try:
            while not self._stopping.is_set():
                try:
                    await self._step()
                    pause = 0.1
                except (RedisError, OSError) as exc:
                    log.warning("queue unavailable; retrying", extra={"error": str(exc)})
                    if "NOGROUP" in str(exc):  # Redis lost its data (restart): start afresh
                        with contextlib.suppress(RedisError, OSError):
                            await self.queue.ensure_groups(self.kinds)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), pause)
                    pause = min(_ERROR_PAUSE_MAX_S, pause * 2)
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
            await self._shutdown()

    async def _beat(self) -> None:
        """Keep this region's queues marked served; adopt the queues nobody serves."""
        while not self._stopping.is_set():
            try:
                await self.queue.adopt(self.kinds, self.adopt_s)
            except (RedisError, OSError) as exc:
                log.warning("worker beat failed; retrying", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.beat_s)

    async def _step(self) -> None:
        free = self.concurrency - len(self._running)
        if free <= 0:
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait(
                [*self._running, stop],
                timeout=self.policy.lease_s / 3,
                return_when=asyncio.FIRST_COMPLETED,
            )
            stop.cancel()
            await self._maintain()
            return
        if self._backlog:
            taken, self._backlog = self._backlog[:free], self._backlog[free:]
            self._start(taken)
            return
        await self._maintain()
        found = await self.queue.read(self.kinds, free, self.block_ms)
        self._start(found[:free])
        self._backlog += found[free:]

    async def _maintain(self) -> None:
        """Every half lease: move due retries, reclaim dead workers' messages, keep ours."""
        now = time.monotonic()
        if now - self._maintained < self.policy.lease_s / 2:
            return
        self._maintained = now
        await self.queue.move_due(utcnow())
        if self._backlog:
            await self.queue.touch(self._backlog)
        free = self.concurrency - len(self._running) - len(self._backlog)
        if free > 0:
            idle_ms = int(self.policy.lease_s * 1000)
            self._backlog += await self.queue.autoclaim(self.kinds, idle_ms, free)

    def _start(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            task = asyncio.create_task(self._handle(d))
            self._running[task] = d
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("job handling failed", exc_info=task.exception())

    async def _handle(self, d: Delivery) -> None:
        claimed = await in_autocommit(
            self.db, repo.claim_job, d.job_id, lease_s=self.policy.lease_s
        )
        job = claimed.job
        if claimed.claim is Claim.DONE:
            await self.queue.ack(d)
            return
        if claimed.claim is Claim.BUSY or job is None:
            return  # its worker is alive; the message waits (and is looked at again later)
        if claimed.claim is Claim.NOT_DUE:
            await self.queue.retry_later(d, job.available_at)
            return
        if claimed.claim is Claim.EXHAUSTED:
            await self.queue.dead_letter(d, job.kind, job.error)
            return
        finished = await run_job(
            self.db, self.handlers, job, self.policy, touch=lambda: self.queue.touch([d])
        )
        if finished.outcome is Outcome.SUCCEEDED:
            await self.queue.ack(d)
        elif finished.outcome is Outcome.FAILED:
            await self.queue.dead_letter(d, job.kind, finished.error)
        elif finished.outcome is Outcome.RETRY and finished.available_at is not None:
            await self.queue.retry_later(d, finished.available_at)
        elif finished.outcome is Outcome.RELEASED:
            await self.queue.requeue(d)
        # SUPERSEDED: the message belongs to the worker that took the job over.

    async def _shutdown(self) -> None:
        running = list(self._running)
        if running:
            _, late = await asyncio.wait(running, timeout=self.grace_s)
            for task in late:
                task.cancel()  # run_job releases the job; _handle re-queues the message
            if late:
                await asyncio.wait(late, timeout=10)
        for d in self._backlog:
            with contextlib.suppress(RedisError, OSError):
                await self.queue.requeue(d)
        self._backlog.clear()
        log.info("worker stopped", extra={"consumer": self.queue.consumer})

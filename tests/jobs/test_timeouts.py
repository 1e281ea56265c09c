"""Time limits and leases: a handler past its kind's timeout is cancelled and retried
(code `timeout`), and a job running far longer than the lease is never taken over while
its worker lives. Real Redis; SQLite and PostgreSQL; the embedded worker too."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from megacity.db import Database
from megacity.jobs import (
    EmbeddedWorker,
    Handlers,
    JobContext,
    JobService,
    JobStatus,
    Policy,
    Worker,
    redis_client,
)
from tests.jobs.conftest import RedisSpace
from tests.jobs.test_worker import _finished

FAST = Policy(lease_s=1.0, backoff_s=0.05, backoff_max_s=0.2, timeout_s=30.0)


def test_handlers_carry_their_kinds_timeouts() -> None:
    async def h(ctx: JobContext) -> None:
        return None

    handlers = Handlers({"a": h, "b": h}, timeouts={"a": 2.5})
    handlers.register("c", h, timeout_s=7)
    assert (handlers.timeout("a"), handlers.timeout("b"), handlers.timeout("c")) == (2.5, None, 7)
    assert handlers.only(["a"]).timeout("a") == 2.5
    with pytest.raises(ValueError, match="without a handler"):
        Handlers({"a": h}, timeouts={"z": 1})
    with pytest.raises(ValueError, match="positive"):
        handlers.register("d", h, timeout_s=0)


class Slow:
    """A handler that overruns on its first `overruns` attempts and notes its cancellations."""

    def __init__(self, overruns: int) -> None:
        self.overruns = overruns
        self.attempts: list[int] = []
        self.cancelled = 0

    async def __call__(self, ctx: JobContext) -> str:
        self.attempts.append(ctx.attempt)
        if ctx.attempt <= self.overruns:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return "done"


async def _redis_workers(
    db: Database, space: RedisSpace, handlers: Handlers, n: int = 1
) -> tuple[JobService, list[Worker], list[asyncio.Task[None]]]:
    redis = redis_client(space.url)
    service = JobService(db, redis=redis, keys=space.keys, max_attempts=2)
    workers = [
        Worker(db, redis, handlers, keys=space.keys, policy=FAST, concurrency=2, block_ms=200)
        for _ in range(n)
    ]
    await workers[0].queue.ensure_groups(handlers.kinds)
    return service, workers, [asyncio.create_task(w.run()) for w in workers]


async def _stop(
    service: JobService, workers: list[Worker], tasks: list[asyncio.Task[None]]
) -> None:
    for w in workers:
        w.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 15)
    await service.stop()


def test_an_overrunning_attempt_is_cancelled_and_retried(
    db: Database, redis_space: RedisSpace
) -> None:
    slow = Slow(overruns=1)

    async def run() -> None:
        handlers = Handlers({"slow": slow}, timeouts={"slow": 0.3})
        service, workers, tasks = await _redis_workers(db, redis_space, handlers)
        try:
            job, _ = await service.submit("slow", {})
            [row] = await _finished(db, [job.id])
        finally:
            await _stop(service, workers, tasks)
        assert row.status == JobStatus.SUCCEEDED and row.attempts == 2 and row.error is None
        assert slow.attempts == [1, 2] and slow.cancelled == 1

    asyncio.run(run())


def test_a_job_that_always_overruns_fails_with_timeout(
    db: Database, redis_space: RedisSpace
) -> None:
    slow = Slow(overruns=99)

    async def run() -> None:
        handlers = Handlers({"slow": slow}, timeouts={"slow": 0.2})
        service, workers, tasks = await _redis_workers(db, redis_space, handlers)
        try:
            job, _ = await service.submit("slow", {})
            [row] = await _finished(db, [job.id])
            dead = await workers[0].queue.dead_letters()
        finally:
            await _stop(service, workers, tasks)
        assert row.status == JobStatus.FAILED and row.attempts == 2
        assert row.error["code"] == "timeout" and "0.2 s" in row.error["message"]
        assert slow.cancelled == 2
        assert [(d["job"], d["code"]) for d in dead] == [(job.id, "timeout")]

    asyncio.run(run())


def test_a_job_longer_than_the_lease_runs_once(db: Database, redis_space: RedisSpace) -> None:
    runs: Counter[str] = Counter()

    async def long(ctx: JobContext) -> str:
        runs[ctx.job_id] += 1
        await asyncio.sleep(3.5)  # over three leases: renewed, never reclaimed
        return "done"

    async def run() -> None:
        handlers = Handlers({"long": long})
        service, workers, tasks = await _redis_workers(db, redis_space, handlers, n=2)
        try:
            job, _ = await service.submit("long", {})
            [row] = await _finished(db, [job.id])
        finally:
            await _stop(service, workers, tasks)
        assert row.status == JobStatus.SUCCEEDED and row.attempts == 1
        assert runs == {job.id: 1}

    asyncio.run(run())


def test_the_embedded_worker_times_out_and_keeps_long_leases(db: Database) -> None:
    slow = Slow(overruns=99)
    runs: Counter[str] = Counter()

    async def long(ctx: JobContext) -> str:
        runs[ctx.job_id] += 1
        await asyncio.sleep(3.5)
        return "done"

    async def run() -> None:
        handlers = Handlers({"slow": slow, "long": long}, timeouts={"slow": 0.2})
        workers = [
            EmbeddedWorker(db, handlers, policy=FAST, concurrency=2, poll_s=0.05) for _ in range(2)
        ]
        service = JobService(db, embedded=workers[0], max_attempts=2)
        await service.start()
        await workers[1].start()
        try:
            overrun, _ = await service.submit("slow", {})
            lengthy, _ = await service.submit("long", {})
            rows = await _finished(db, [overrun.id, lengthy.id])
        finally:
            await workers[1].close()
            await service.stop()
        assert rows[0].status == JobStatus.FAILED and rows[0].error["code"] == "timeout"
        assert rows[1].status == JobStatus.SUCCEEDED and rows[1].attempts == 1
        assert slow.cancelled == 2 and runs == {lengthy.id: 1}

    asyncio.run(run())

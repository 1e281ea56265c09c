"""The Redis worker in-process: results, retries into the dead-letter stream, cancellation,
priority order, and jobs released on shutdown. Real Redis; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.jobs import (
    Handlers,
    JobContext,
    JobService,
    JobStatus,
    Policy,
    Priority,
    Worker,
    redis_client,
)
from megacity.jobs.runner import in_tx
from tests.jobs.conftest import RedisSpace
from tests.jobs.handlers import build_with

FAST = Policy(lease_s=1.0, backoff_s=0.05, backoff_max_s=0.2)


async def _finished(db: Database, ids: list[str], timeout_s: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = [await in_tx(db, repo.get_job, i) for i in ids]
        if all(r is not None and r.status in repo.TERMINAL for r in rows):
            return rows
        assert time.monotonic() < deadline, {r.id: r.status for r in rows if r}
        await asyncio.sleep(0.05)


async def _with_worker(
    db: Database,
    space: RedisSpace,
    handlers: Handlers,
    body: Callable[[JobService, Worker], Awaitable[None]],
    *,
    concurrency: int = 2,
    start: bool = True,
) -> None:
    redis = redis_client(space.url)
    service = JobService(db, redis=redis, keys=space.keys, max_attempts=3)
    worker = Worker(
        db, redis, handlers, keys=space.keys, policy=FAST, concurrency=concurrency, block_ms=200
    )
    await worker.queue.ensure_groups(handlers.kinds)
    task = asyncio.create_task(worker.run()) if start else None
    try:
        await body(service, worker)
    finally:
        worker.stop()
        if task is not None:
            await asyncio.wait_for(task, 15)
        await redis.aclose()


def test_a_job_runs_once_and_its_result_is_stored(db: Database, redis_space: RedisSpace) -> None:
    async def body(service: JobService, worker: Worker) -> None:
        job, created = await service.submit("record", {"n": 7}, owner_id="u1")
        assert created and job.status == JobStatus.QUEUED
        [row] = await _finished(db, [job.id])
        assert row.status == JobStatus.SUCCEEDED and row.result["n"] == 7
        assert row.attempts == 1 and row.progress == 1.0 and row.finished_at is not None
        pending = await worker.queue.redis.xpending(space_stream(redis_space, "record"), "workers")
        assert pending["pending"] == 0  # acknowledged after the result was stored

    asyncio.run(_with_worker(db, redis_space, build_with(None), body))


def space_stream(space: RedisSpace, kind: str, priority: Priority = Priority.NORMAL) -> str:
    return space.keys.stream(priority, kind)


def test_a_poison_job_is_dead_lettered_after_its_attempts(
    db: Database, redis_space: RedisSpace
) -> None:
    async def body(service: JobService, worker: Worker) -> None:
        job, _ = await service.submit("fail", {"n": 1}, max_attempts=3)
        ok, _ = await service.submit("record", {"n": 2})
        started = time.monotonic()
        rows = await _finished(db, [job.id, ok.id])
        assert rows[0].status == JobStatus.FAILED and rows[0].attempts == 3
        assert rows[0].error == {"code": "handler_error", "message": "RuntimeError: poison 1"}
        assert rows[1].status == JobStatus.SUCCEEDED  # the poison blocks nothing
        dead = await worker.queue.dead_letters()
        assert [(d["job"], d["kind"], d["code"]) for d in dead] == [
            (job.id, "fail", "handler_error")
        ]
        assert time.monotonic() - started < 5  # backoff 0.05, 0.1 s; moved every lease/2

    asyncio.run(_with_worker(db, redis_space, build_with(None), body))


def test_a_cancelled_job_is_skipped_and_acknowledged(db: Database, redis_space: RedisSpace) -> None:
    runs: list[str] = []

    async def record(ctx: JobContext) -> None:
        runs.append(ctx.job_id)

    async def body(service: JobService, worker: Worker) -> None:
        cancelled, _ = await service.submit("record", {}, owner_id="u")
        result, _ = await service.cancel(cancelled.id, "u")
        assert result.value == "cancelled"
        ran, _ = await service.submit("record", {}, owner_id="u")
        task = asyncio.create_task(worker.run())
        try:
            rows = await _finished(db, [cancelled.id, ran.id])
        finally:
            worker.stop()
            await task
        assert [r.status for r in rows] == [JobStatus.CANCELLED, JobStatus.SUCCEEDED]
        assert runs == [ran.id]
        pending = await worker.queue.redis.xpending(space_stream(redis_space, "record"), "workers")
        assert pending["pending"] == 0

    asyncio.run(_with_worker(db, redis_space, Handlers({"record": record}), body, start=False))


def test_higher_priority_runs_first(db: Database, redis_space: RedisSpace) -> None:
    order: list[str] = []

    async def record(ctx: JobContext) -> None:
        order.append(ctx.payload["p"])

    async def body(service: JobService, worker: Worker) -> None:
        ids = []
        for p in ("low", "normal", "high", "low", "high"):
            job, _ = await service.submit("record", {"p": p}, priority=p)
            ids.append(job.id)
        task = asyncio.create_task(worker.run())
        try:
            await _finished(db, ids)
        finally:
            worker.stop()
            await task
        assert order == ["high", "high", "normal", "low", "low"]

    asyncio.run(
        _with_worker(
            db, redis_space, Handlers({"record": record}), body, concurrency=1, start=False
        )
    )


def test_shutdown_releases_a_running_job_for_another_worker(
    db: Database, redis_space: RedisSpace
) -> None:
    seen: list[int] = []

    async def slow(ctx: JobContext) -> str:
        seen.append(ctx.attempt)
        if len(seen) == 1:
            await asyncio.sleep(30)  # interrupted by the shutdown
        return "done"

    async def body(service: JobService, worker: Worker) -> None:
        job, _ = await service.submit("slow", {})
        worker.grace_s = 0.1
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 10
        while not seen:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        worker.stop()
        await asyncio.wait_for(task, 10)
        row = await in_tx(db, repo.get_job, job.id)
        assert row.status == JobStatus.QUEUED and row.attempts == 0  # not counted
        second = Worker(
            db,
            worker.queue.redis,
            worker.handlers,
            keys=redis_space.keys,
            policy=FAST,
            block_ms=200,
        )
        task = asyncio.create_task(second.run())
        try:
            [row] = await _finished(db, [job.id], timeout_s=5)
        finally:
            second.stop()
            await task
        assert row.status == JobStatus.SUCCEEDED and row.result == "done" and seen == [1, 1]

    asyncio.run(_with_worker(db, redis_space, Handlers({"slow": slow}), body, start=False))

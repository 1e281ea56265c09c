"""Job queues per region: each region's workers run its jobs; a region without workers
has its queue adopted by another region's, and gets it back when its workers return.
In-process workers on the real Redis; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.jobs import Handlers, JobContext, JobService, Policy, Priority, Worker, redis_client
from megacity.jobs.runner import in_tx
from tests.jobs.conftest import RedisSpace

FAST = Policy(lease_s=5.0, backoff_s=0.05, backoff_max_s=0.2)
DEADLINE_S = 60.0  # generous: other work shares the CPU


def _handlers(region: str) -> Handlers:
    handlers = Handlers()

    async def record(ctx: JobContext) -> dict[str, Any]:
        return {"ran_in": region, "n": ctx.payload["n"]}

    handlers.register("record", record)
    return handlers


@asynccontextmanager
async def _worker(
    db: Database, space: RedisSpace, region: str, adopt_s: float = 10.0
) -> AsyncIterator[Worker]:
    redis = redis_client(space.url)
    worker = Worker(
        db,
        redis,
        _handlers(region),
        keys=space.keys,
        policy=FAST,
        concurrency=4,
        block_ms=200,
        region=region,
        adopt_s=adopt_s,
        beat_s=0.2,
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        await redis.aclose()


@asynccontextmanager
async def _service(db: Database, space: RedisSpace) -> AsyncIterator[JobService]:
    redis = redis_client(space.url)
    try:
        yield JobService(db, redis=redis, keys=space.keys, region="kr", regions=("kr", "jp"))
    finally:
        await redis.aclose()


async def _submit(service: JobService, region: str | None, n: int) -> list[str]:
    jobs = [await service.submit("record", {"n": i}, region=region) for i in range(n)]
    return [job.id for job, _ in jobs]


async def _ran_in(db: Database, ids: list[str]) -> list[str]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        rows = [await in_tx(db, repo.get_job, i) for i in ids]
        if all(r is not None and r.status == repo.JobStatus.SUCCEEDED for r in rows):
            return [r.result["ran_in"] for r in rows if r is not None]
        assert time.monotonic() < deadline, {r.id: r.status for r in rows if r}
        await asyncio.sleep(0.05)


def test_each_region_s_workers_run_its_jobs(db: Database, redis_space: RedisSpace) -> None:
    async def run() -> None:
        async with (
            _service(db, redis_space) as service,
            _worker(db, redis_space, "kr"),
            _worker(db, redis_space, "jp"),
        ):
            kr = await _submit(service, "kr", 10)
            jp = await _submit(service, "jp", 10)
            home = await _submit(service, None, 3)  # no region named: the service's own
            stranger = await _submit(service, "mars", 2)  # unknown: the service's own too
            assert await _ran_in(db, kr + home + stranger) == ["kr"] * 15
            assert await _ran_in(db, jp) == ["jp"] * 10
            rows = [await in_tx(db, repo.get_job, i) for i in (kr[0], jp[0], stranger[0])]
            assert [r.region for r in rows if r is not None] == ["kr", "jp", "kr"]
            stream = redis_space.keys.stream(Priority.NORMAL, "record", "jp")
            assert await service.redis.xlen(stream) == 10  # type: ignore[union-attr]

    asyncio.run(run())


def test_a_region_without_workers_is_served_by_another(
    db: Database, redis_space: RedisSpace, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> None:
        async with (
            _service(db, redis_space) as service,
            _worker(db, redis_space, "jp", adopt_s=3.0) as jp,
        ):
            # Nobody serves kr: Japan's worker adopts its queue and loses nothing.
            assert await _ran_in(db, await _submit(service, "kr", 5)) == ["jp"] * 5
            assert jp.queue.adopted == [("kr", "record")]
            async with _worker(db, redis_space, "kr"):
                deadline = time.monotonic() + DEADLINE_S  # kr's worker beats: given back
                while jp.queue.adopted:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
                assert await _ran_in(db, await _submit(service, "kr", 5)) == ["kr"] * 5

    with caplog.at_level(logging.INFO, logger="megacity.jobs"):
        asyncio.run(run())
    messages = [r.getMessage() for r in caplog.records]
    assert "no worker serves this region's queue: adopted" in messages
    assert "a region's queue has its own workers again" in messages

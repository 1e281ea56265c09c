"""Lost publishes: a job committed but never published (Redis unreachable at submit, or the
process killed between commit and XADD) is published again by the reconciler and runs
exactly once; a live job is left alone; duplicates are harmless. Real Redis."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

from megacity.config.settings import Settings
from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.jobs import Priority
from megacity.jobs import Handlers, JobContext, JobService, JobStatus, Worker, redis_client
from megacity.jobs.reconcile import reconcile
from megacity.jobs.runner import in_tx
from tests.jobs.conftest import RedisSpace
from tests.jobs.test_timeouts import FAST
from tests.jobs.test_worker import _finished


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unreachable(db: Database, space: RedisSpace) -> JobService:
    """A service whose Redis refuses connections: its publishes fail after the commit."""
    return JobService(
        db, redis=redis_client(f"redis://127.0.0.1:{_closed_port()}/0"), keys=space.keys
    )


def test_reconcile_publishes_exactly_the_lost_jobs(db: Database, redis_space: RedisSpace) -> None:
    async def run() -> None:
        good = JobService(db, redis=redis_client(redis_space.url), keys=redis_space.keys)
        broken = _unreachable(db, redis_space)
        try:
            published, _ = await good.submit("record", {})
            failed, created = await broken.submit("record", {}, priority="high")  # no error
            assert created and failed.status == JobStatus.QUEUED
            killed, _ = await in_tx(db, repo.create_job, kind="record", payload={})  # no XADD
            assert good.queue is not None
            assert await good.queue.live([published.id, failed.id, killed.id]) == [
                True,
                False,
                False,
            ]
            assert await reconcile(db, good.queue, older_than_s=60) == 0  # too recent
            assert await reconcile(db, good.queue, older_than_s=0) == 2
            assert await reconcile(db, good.queue, older_than_s=0) == 0  # now live
            high = redis_space.keys.stream(Priority.HIGH, "record")
            entries = await good.queue.redis.xrange(high)
            assert [fields["job"] for _, fields in entries] == [failed.id]
        finally:
            await good.stop()
            await broken.stop()

    asyncio.run(run())


def test_a_job_whose_publish_failed_runs_exactly_once(
    db: Database, redis_space: RedisSpace
) -> None:
    runs: Counter[str] = Counter()

    async def record(ctx: JobContext) -> None:
        runs[ctx.job_id] += 1

    settings = Settings(
        redis_url=redis_space.url,
        jobs_key_prefix=redis_space.keys.prefix,
        jobs_reconcile_interval_s=0.2,
        retention_sweep_interval_s=0,
    )

    async def run() -> None:
        handlers = Handlers({"record": record})
        service = JobService.from_settings(settings, db, handlers)  # runs the reconciler
        assert service.chores is not None and service.chores.names == ["reconcile"]
        broken = _unreachable(db, redis_space)
        redis = redis_client(redis_space.url)
        worker = Worker(db, redis, handlers, keys=redis_space.keys, policy=FAST, block_ms=100)
        await worker.queue.ensure_groups(handlers.kinds)
        await service.start()
        task = asyncio.create_task(worker.run())
        try:
            lost, _ = await broken.submit("record", {"n": 1})
            ok, _ = await service.submit("record", {"n": 2})
            await service.queue.publish(ok.id, "record", Priority.NORMAL)  # type: ignore[union-attr]
            rows = await _finished(db, [lost.id, ok.id])
            await asyncio.sleep(0.6)  # more reconciler runs: nothing is published again
            live = await worker.queue.live([lost.id, ok.id])
        finally:
            worker.stop()
            await asyncio.wait_for(task, 15)
            await service.stop()
            await broken.stop()
            await redis.aclose()
        assert [r.status for r in rows] == [JobStatus.SUCCEEDED] * 2
        assert [r.attempts for r in rows] == [1, 1]
        assert runs == {lost.id: 1, ok.id: 1}  # the duplicate message of `ok` ran nothing
        assert live == [False, False]  # finished jobs are live no more

    asyncio.run(run())

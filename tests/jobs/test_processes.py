"""`megacity worker` processes on real Redis and PostgreSQL: a worker killed with SIGKILL
mid-job, and 200 jobs shared by three workers — each job's result recorded exactly once.

Other work shares the CPU while these run: every wait is on a condition (workers
consuming, jobs finished) with a generous overall deadline, never a short fixed sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis as sync_redis

from megacity.db import Database
from megacity.jobs import JobService, JobStatus, redis_client
from megacity.jobs.testing import WorkerProcess, wait_for_jobs, wait_for_workers
from tests.jobs.conftest import RedisSpace
from tests.jobs.handlers import runs_key


@pytest.fixture
def pg(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    database.upgrade()
    yield database
    database.close()


STARTUP_S = 120.0  # worker processes importing and connecting on a loaded 2-core machine
FINISH_S = 180.0  # jobs done, with the CPU shared


def _workers(
    n: int, db: Database, space: RedisSpace, concurrency: int, lease_s: float
) -> list[WorkerProcess]:
    env = {
        "MEGACITY_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "MEGACITY_REDIS_URL": space.url,
        "MEGACITY_JOBS_KEY_PREFIX": space.keys.prefix,
        "MEGACITY_JOBS_VISIBILITY_TIMEOUT_S": str(lease_s),
        "MEGACITY_JOBS_BACKOFF_S": "0.05",
        "MEGACITY_DB_AUTO_UPGRADE": "false",
        "MEGACITY_LOG_LEVEL": "WARNING",
        "MEGACITY_RETENTION_SWEEP_INTERVAL_S": "0",  # no object store here
    }
    args = ["--handlers", "tests.jobs.handlers:build", "--kinds", "record"]
    args += ["--concurrency", str(concurrency)]
    workers = [WorkerProcess(args, env) for _ in range(n)]
    try:
        wait_for_workers(space.url, space.keys, n, STARTUP_S)
    except BaseException:
        for w in workers:
            w.close()
        raise
    return workers


async def _submit(db: Database, space: RedisSpace, payloads: list[dict[str, object]]) -> list[str]:
    redis = redis_client(space.url)
    service = JobService(db, redis=redis, keys=space.keys)
    try:
        done = await asyncio.gather(*(service.submit("record", p) for p in payloads))
        return [job.id for job, _ in done]
    finally:
        await redis.aclose()


def _runs(space: RedisSpace) -> list[tuple[str, str, int]]:
    client = sync_redis.Redis.from_url(space.url, decode_responses=True)
    try:
        raw: list[str] = client.lrange(runs_key(space.keys.prefix), 0, -1)  # type: ignore[assignment]
    finally:
        client.close()
    return [(p, j, int(pid)) for p, j, pid in (r.split() for r in raw)]


def test_a_killed_worker_s_job_completes_once_on_another(
    pg: Database, redis_space: RedisSpace
) -> None:
    workers = _workers(2, pg, redis_space, concurrency=1, lease_s=2)
    try:
        [job_id] = asyncio.run(_submit(pg, redis_space, [{"sleep_s": 1.5, "n": 1}]))
        deadline = time.monotonic() + FINISH_S
        while not (starts := [r for r in _runs(redis_space) if r[0] == "start"]):
            assert time.monotonic() < deadline, [w.output() for w in workers]
            time.sleep(0.05)
        victim = next(w for w in workers if w.pid == starts[0][2])
        survivor = next(w for w in workers if w is not victim)
        victim.kill()
        [row] = wait_for_jobs(pg, [job_id], timeout_s=FINISH_S)
        assert row.status == JobStatus.SUCCEEDED, row.error
        assert row.attempts == 2 and row.result["pid"] == survivor.pid
        runs = _runs(redis_space)
        assert [r for r in runs if r[0] == "end"] == [("end", job_id, survivor.pid)]
        assert [r[2] for r in runs if r[0] == "start"] == [victim.pid, survivor.pid]
        assert survivor.stop(timeout_s=60) == 0  # SIGTERM: a clean exit
    finally:
        for w in workers:
            w.close()


def test_200_jobs_across_3_workers_each_done_exactly_once(
    pg: Database, redis_space: RedisSpace
) -> None:
    # A lease far longer than a stalled event loop on a loaded machine: no job may be
    # taken over from a live worker, so each runs exactly once.
    workers = _workers(3, pg, redis_space, concurrency=4, lease_s=60)
    try:
        ids = asyncio.run(_submit(pg, redis_space, [{"n": i} for i in range(200)]))
        rows = wait_for_jobs(pg, ids, timeout_s=FINISH_S)
        assert len(set(ids)) == 200
        assert all(r.status == JobStatus.SUCCEEDED and r.attempts == 1 for r in rows)
        ends = Counter(j for phase, j, _ in _runs(redis_space) if phase == "end")
        assert set(ends) == set(ids) and set(ends.values()) == {1}
        by_worker = Counter(r.result["pid"] for r in rows)
        assert len(by_worker) >= 2, by_worker  # the load is shared
        for w in workers:
            assert w.stop(timeout_s=60) == 0, w.output()
    finally:
        for w in workers:
            w.close()

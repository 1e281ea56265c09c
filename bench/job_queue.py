"""Job queue benchmark: no-op jobs end to end (submit → done) on Redis Streams with 1 and 4
`megacity` workers, against arq running the same no-op jobs in the same run.

Prints jobs/s (from the first submission until every job is done) and the enqueue
latency p50/p99 (ours: INSERT + commit in PostgreSQL, group-committed with the submissions
in flight alongside (jobs/batch.py), then XADD; arq: one Redis call).
Needs Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 (or
MEGACITY_TEST_POSTGRES_URL). Usage: python bench/job_queue.py [--jobs N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import redis as sync_redis
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import pct, table  # noqa: E402

from megacity.jobs import Handlers, JobContext, JobService, Keys, redis_client  # noqa: E402
from megacity.jobs.testing import wipe  # noqa: E402

REDIS = os.environ.get("MEGACITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("MEGACITY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CONCURRENCY = 8  # jobs at once per worker, both queues
SUBMITTERS = 16  # clients submitting at once
DONE = "bench:queue:done"


def handlers() -> Handlers:
    """The no-op job; it counts itself so that both queues are timed the same way."""
    counter = sync_redis.asyncio.Redis.from_url(REDIS)

    async def bench_noop(ctx: JobContext) -> None:
        await counter.incr(DONE + ":" + ctx.payload["run"])

    return Handlers({"bench_noop": bench_noop})


def _our_worker(db_url: str, prefix: str) -> None:
    from megacity.config.settings import Settings
    from megacity.db import Database
    from megacity.jobs.serve import serve

    settings = Settings(
        redis_url=REDIS,
        database_url=db_url,
        jobs_key_prefix=prefix,
        log_level="WARNING",
        retention_sweep_interval_s=0,  # no object store in the benchmark
    )
    db = Database(db_url)
    asyncio.run(serve(settings, db, handlers(), CONCURRENCY))


async def _arq_noop(ctx: dict[str, Any], run: str) -> None:
    await ctx["redis"].incr(DONE + ":" + run)


def _arq_worker(queue: str) -> None:
    from arq.connections import RedisSettings
    from arq.worker import run_worker

    class WorkerSettings:
        functions = [_arq_noop]  # noqa: RUF012
        redis_settings = RedisSettings.from_dsn(REDIS)
        queue_name = queue
        max_jobs = CONCURRENCY
        keep_result = 0
        poll_delay = 0.05

    run_worker(WorkerSettings)  # type: ignore[arg-type]


async def _drive(
    submit: Callable[[str, int], Awaitable[None]], run: str, jobs: int
) -> tuple[float, list[float]]:
    """Submit `jobs` from SUBMITTERS clients; (seconds until all done, enqueue latencies)."""
    counter = sync_redis.asyncio.Redis.from_url(REDIS)
    latencies: list[float] = []
    remaining = iter(range(jobs))

    async def client() -> None:
        for i in remaining:
            t = time.perf_counter()
            await submit(run, i)
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(SUBMITTERS)))
    deadline = time.monotonic() + 120
    while int(await counter.get(DONE + ":" + run) or 0) < jobs:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run}: jobs not done in 120 s")
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await counter.delete(DONE + ":" + run)
    await counter.aclose()
    return elapsed, latencies


def _spawn(target: Callable[..., None], n: int, *args: str) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=args, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    return procs


def _stop(procs: list[Any]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(timeout=15)


def ours(db_url: str, workers: int, jobs: int) -> tuple[float, list[float]]:
    from megacity.db import Database

    keys = Keys(f"bench:{secrets.token_hex(4)}")
    db = Database(db_url)
    procs = _spawn(_our_worker, workers, db_url, keys.prefix)

    async def go() -> tuple[float, list[float]]:
        redis = redis_client(REDIS)
        service = JobService(db, redis=redis, keys=keys)
        await service.submit("bench_noop", {"run": "warmup"})  # workers up, pool warm
        await _drive(lambda run, i: _ours_submit(service, run, i), "warmup", 0)
        out = await _drive(lambda run, i: _ours_submit(service, run, i), keys.prefix, jobs)
        await redis.aclose()
        return out

    try:
        time.sleep(2.0)  # worker processes import and join the group
        return asyncio.run(go())
    finally:
        _stop(procs)
        wipe(REDIS, keys)
        db.close()


async def _ours_submit(service: JobService, run: str, i: int) -> None:
    await service.submit("bench_noop", {"run": run, "i": i})


def arq(workers: int, jobs: int) -> tuple[float, list[float]]:
    from arq import create_pool
    from arq.connections import RedisSettings

    queue = f"bench:arq:{secrets.token_hex(4)}"
    procs = _spawn(_arq_worker, workers, queue)

    async def go() -> tuple[float, list[float]]:
        pool = await create_pool(RedisSettings.from_dsn(REDIS), default_queue_name=queue)

        async def submit(run: str, i: int) -> None:
            await pool.enqueue_job("_arq_noop", run)

        out = await _drive(submit, queue, jobs)
        await pool.aclose()
        return out

    try:
        time.sleep(2.0)
        return asyncio.run(go())
    finally:
        _stop(procs)
        client = sync_redis.Redis.from_url(REDIS)
        for key in client.scan_iter(match=queue + "*"):
            client.delete(key)
        client.close()


def _database() -> tuple[str, Callable[[], None]]:
    name = f"megacity_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    from megacity.db import Database

    db_url, drop = _database()
    try:
        Database(db_url).upgrade()
        rows = []
        for workers in (1, 4):
            for name, run in (
                (
                    "megacity (Redis Streams + PostgreSQL)",
                    lambda w=workers: ours(db_url, w, args.jobs),
                ),
                ("arq", lambda w=workers: arq(w, args.jobs)),
            ):
                elapsed, lat = run()
                rows.append(
                    [
                        name,
                        str(workers),
                        str(args.jobs),
                        f"{args.jobs / elapsed:.0f}",
                        f"{pct(lat, 0.5) * 1000:.2f}",
                        f"{pct(lat, 0.99) * 1000:.2f}",
                    ]
                )
        table(
            f"No-op jobs end to end, {SUBMITTERS} submitters, {CONCURRENCY} jobs at once per worker"
            f" ({os.cpu_count()} cores)",
            ["queue", "workers", "jobs", "jobs/s", "enqueue p50 ms", "enqueue p99 ms"],
            rows,
        )
        print(
            "\nNotes: megacity commits every job to PostgreSQL before submit returns (durable"
            " before 202) and records each claim and result there (exactly-once completion);"
            " arq keeps jobs in Redis only. Parity is not expected: the gap is the price of"
            " the durable table, one commit (fsync) per state change."
        )
    finally:
        drop()


if __name__ == "__main__":
    main()

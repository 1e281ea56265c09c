"""Chores: whose turn it is (Redis SET NX PX, a PostgreSQL advisory lock), and a worker
process's loop (`serve`) running the retention sweep on its object store."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

from megacity.config.settings import Settings
from megacity.db import Database, StoredObject
from megacity.db.models import utcnow
from megacity.db.objects import record_object
from megacity.jobs import default_handlers, redis_client
from megacity.jobs.chores import database_turn, redis_turn
from megacity.jobs.serve import serve
from megacity.storage import Kind, LocalObjectStore, URLSigner
from tests.jobs.conftest import RedisSpace


def test_one_redis_turn_per_interval(redis_space: RedisSpace) -> None:
    async def run() -> list[bool]:
        redis = redis_client(redis_space.url)
        try:
            turn = redis_turn(redis, redis_space.keys.lock("chore"), 0.3)
            got = []
            for _ in range(2):
                async with turn() as mine:
                    got.append(mine)
            await asyncio.sleep(0.4)  # the interval is over: the next one may run
            async with turn() as mine:
                got.append(mine)
            return got
        finally:
            await redis.aclose()

    assert asyncio.run(run()) == [True, False, True]


def test_one_database_turn_at_a_time(db: Database) -> None:
    async def run() -> list[bool]:
        first, second = database_turn(db, "chore"), database_turn(db, "chore")
        async with first() as a, second() as b:
            pass
        async with second() as c:
            return [a, b, c]

    # PostgreSQL: the advisory lock is held for the run; SQLite: one process, always.
    expected = [True, False, True] if db.dialect == "postgresql" else [True, True, True]
    assert asyncio.run(run()) == expected


def test_a_worker_process_sweeps_its_store(db: Database, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects", URLSigner(b"k" * 32, "http://test"))
    old = store.put("kzone/audio/u1/old.wav", b"12345", "audio/wav")
    kept = store.put("kzone/audio/u1/kept.wav", b"123", "audio/wav")
    with db.session() as session:
        record_object(session, old, Kind.AUDIO, now=utcnow() - timedelta(days=400))
        record_object(session, kept, Kind.AUDIO, expires_at=utcnow() + timedelta(days=9))
    settings = Settings(
        data_dir=tmp_path, retention_sweep_interval_s=0.05, jobs_poll_interval_s=0.05
    )

    async def run() -> None:
        worker = asyncio.create_task(serve(settings, db, default_handlers(), 1, store=store))
        deadline = time.monotonic() + 15
        while store.exists(old.key):
            assert time.monotonic() < deadline and not worker.done()
            await asyncio.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)  # what stops a worker process
        await asyncio.wait_for(worker, 15)

    asyncio.run(run())
    assert store.exists(kept.key)
    with db.session() as session:
        assert [row.key for row in session.query(StoredObject)] == [kept.key]

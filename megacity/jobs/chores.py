"""Chores: periodic upkeep that one worker does for all — publishing lost jobs again
(reconcile.py), and the retention sweep of stored objects (storage/retention.py).

Each chore runs every `interval_s` on whichever process gets its turn: with Redis the
first to `SET NX PX` the chore's key (so at most one run per interval across every
worker and router), without Redis a PostgreSQL advisory lock held for the run (SQLite:
one file, one process). Neither chore depends on it for correctness — both are safe to
run twice — the turn only saves repeated work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from sqlalchemy import Connection, text

from megacity.config.settings import Settings
from megacity.db import Database
from megacity.db.models import utcnow
from megacity.jobs.keys import Keys
from megacity.jobs.queue import RedisQueue
from megacity.jobs.reconcile import reconcile

if TYPE_CHECKING:  # the storage package imports boto3: only workers that sweep load it
    from megacity.storage.base import ObjectStore

log = logging.getLogger("megacity.jobs")

Turn = Callable[[], AbstractAsyncContextManager[bool]]  # True: this process runs it now
FIRST_RUN_MAX_S = 60.0  # the first run waits one interval, at most this: start-up stays light


def redis_turn(redis: Redis, key: str, interval_s: float) -> Turn:
    """At most one run per `interval_s` across all processes: whoever sets `key` first."""

    @contextlib.asynccontextmanager
    async def turn() -> AsyncIterator[bool]:
        got = await redis.set(key, "1", nx=True, px=max(1, int(interval_s * 1000)))
        yield bool(got)

    return turn


def database_turn(db: Database, name: str) -> Turn:
    """One run at a time across processes sharing a PostgreSQL database; SQLite: always."""
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)

    @contextlib.asynccontextmanager
    async def turn() -> AsyncIterator[bool]:
        if db.dialect != "postgresql":
            yield True
            return
        conn = await asyncio.to_thread(db.engine.connect)
        got = False
        try:
            got = await asyncio.to_thread(_try_lock, conn, key)
            yield got
        finally:
            await asyncio.to_thread(_unlock_and_close, conn, key, got)

    return turn


def _try_lock(conn: Connection, key: int) -> bool:
    got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
    conn.commit()
    return got


def _unlock_and_close(conn: Connection, key: int, held: bool) -> None:
    try:
        if held:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
    finally:
        conn.close()  # a broken connection: its PostgreSQL session (and lock) ends with it


@dataclass(frozen=True, slots=True)
class Chore:
    """`work` every `interval_s` seconds, when `turn` says it is this process's turn."""

    name: str
    interval_s: float
    work: Callable[[], Awaitable[Any]]
    turn: Turn


class Chores:
    """Runs its chores in the background between `start()` and `stop()`."""

    def __init__(self, chores: list[Chore], *, grace_s: float = 10.0) -> None:
        self.chores = chores
        self.grace_s = grace_s
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.chores]

    def start(self) -> None:
        self._stop.clear()
        self._tasks = [asyncio.create_task(self._loop(c)) for c in self.chores]

    async def stop(self) -> None:
        """Stop; a run in progress gets `grace_s` to finish, then is cancelled."""
        self._stop.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self.grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _loop(self, chore: Chore) -> None:
        wait_s = min(chore.interval_s, FIRST_RUN_MAX_S)
        while not await self._stopped_within(wait_s):
            wait_s = chore.interval_s
            try:
                async with chore.turn() as mine:
                    if mine:
                        await chore.work()
            except Exception:  # the next interval tries again
                log.exception("job chore failed", extra={"chore": chore.name})

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()


def build_chores(
    settings: Settings,
    db: Database,
    *,
    redis: Redis | None = None,
    keys: Keys | None = None,
    store: ObjectStore | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Chores:
    """The chores the settings ask for: reconcile with Redis, the sweep with a store."""
    chores: list[Chore] = []
    keys = keys or Keys(settings.jobs_key_prefix)

    def turn(name: str, interval_s: float) -> Turn:
        if redis is not None:
            return redis_turn(redis, keys.lock(name), interval_s)
        return database_turn(db, f"megacity:{name}")

    every = settings.jobs_reconcile_interval_s
    if redis is not None and every > 0:
        queue = RedisQueue(redis, keys, region=settings.home_region)

        async def republish() -> None:
            await reconcile(db, queue, older_than_s=every)

        chores.append(Chore("reconcile", every, republish, turn("reconcile", every)))
    every = settings.retention_sweep_interval_s
    if store is not None and every > 0:
        from megacity.storage.retention import log_report, sweep

        swept = store

        async def retention() -> None:
            report = await asyncio.to_thread(sweep, db, swept, settings.retention, now=clock())
            log_report(report)

        chores.append(Chore("retention", every, retention, turn("retention", every)))
    return Chores(chores, grace_s=settings.jobs_shutdown_grace_s)

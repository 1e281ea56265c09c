"""Which reads may go to the read replica: read-your-writes across every router replica.

A read that tolerates lag (a job's status, a list of one's consents or references, the
bias report) goes to the replica — unless the same caller wrote within `window_s`, when
it goes to the primary, so a learner always sees what they just did even if their next
request lands on another router. The marks ("this caller wrote at t") live in Redis when
there is one (every router sees them), else in memory. Without a replica nothing is
marked and every read goes to the primary, at no cost.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from megacity.db.database import Database

log = logging.getLogger("megacity.db")

SessionFactory = Callable[[], AbstractContextManager[Session]]


class WriteMarks(Protocol):
    """Who wrote recently (`window_s`): set after a write, checked before a read."""

    async def wrote(self, caller: str, window_s: float) -> None: ...

    async def recent(self, caller: str) -> bool: ...

    async def close(self) -> None: ...


class MemoryWriteMarks:
    """Marks in a dict (one router), bounded to `max_callers`."""

    def __init__(self, max_callers: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._until: OrderedDict[str, float] = OrderedDict()
        self._max = max_callers
        self._clock = clock

    async def wrote(self, caller: str, window_s: float) -> None:
        self._until[caller] = self._clock() + window_s
        self._until.move_to_end(caller)
        while len(self._until) > self._max:
            self._until.popitem(last=False)

    async def recent(self, caller: str) -> bool:
        until = self._until.get(caller)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[caller]
            return False
        return True

    async def close(self) -> None:
        self._until.clear()


class RedisWriteMarks:
    """Marks as expiring keys ``{prefix}:wrote:<caller>``, shared by every router replica.

    Redis failing makes every read "recent": the primary answers, which is always right.
    """

    def __init__(self, redis: Redis, prefix: str = "megacity:reads") -> None:
        self.redis = redis
        self._base = "{" + prefix + "}:wrote:"

    @classmethod
    def from_url(cls, url: str, prefix: str = "megacity:reads") -> RedisWriteMarks:
        client = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        return cls(client, prefix)

    async def wrote(self, caller: str, window_s: float) -> None:
        try:
            await self.redis.set(self._base + caller, b"1", px=max(1, int(window_s * 1000)))
        except (RedisError, OSError) as exc:
            log.warning("read-your-writes mark not stored: %s", exc)

    async def recent(self, caller: str) -> bool:
        try:
            return bool(await self.redis.exists(self._base + caller))
        except (RedisError, OSError):
            return True

    async def close(self) -> None:
        await self.redis.aclose()


class Reads:
    """Chooses the session factory of a read: the replica's, or the primary's."""

    def __init__(self, db: Database, marks: WriteMarks, *, window_s: float = 5.0) -> None:
        self.db = db
        self.marks = marks
        self.window_s = window_s

    async def wrote(self, caller: str | None) -> None:
        """The caller just wrote: its reads go to the primary for `window_s`."""
        if self.db.replica is not None and caller and self.window_s > 0:
            await self.marks.wrote(caller, self.window_s)

    async def session(self, caller: str | None) -> SessionFactory:
        """`db.session` when the read must see the latest writes, else `db.read_session`."""
        if self.db.replica is None or (caller and await self.marks.recent(caller)):
            return self.db.session
        return self.db.read_session

    async def close(self) -> None:
        await self.marks.close()

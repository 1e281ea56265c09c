"""What every replica sees: this replica's rolling buckets and node views, shared through Redis.

Without Redis the dashboard reads this process's own figures (`LocalBoard`). With
REDIS_URL each replica publishes, every `flush_s`, the buckets it touched since its last
flush and its view of the nodes (`RedisBoard`); every replica's dashboard reads them all
back and merges them, so all replicas show the same picture. A replica writes only its
own hash field, so a flush is idempotent; bucket hashes expire with their tier's window,
so the history of a replica that has gone stays until its window has passed.

Redis keys (one place, under one prefix, default ``megacity:dash``):

* ``{prefix}:roll:<tier>:<bucket id>`` — hash, field = replica id, value = that replica's
  bucket as JSON (`rolling.Bucket.to_json`); expires a tier's span after its bucket.
* ``{prefix}:nodes:<replica>`` — JSON list of the replica's node views; expires after
  three flush intervals (a replica that stopped publishing drops out of the picture).
* ``{prefix}:replicas`` — sorted set of replica ids, score = last flush (s since epoch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from megacity.observability.rolling import TIERS, Bucket, RollingStats, Tier, window_ids
from megacity.observability.windows import BucketTotals, SlidingWindow, WindowSummary

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("megacity.dashboard")

NodeViews = Callable[[], list[dict[str, Any]]]
_DUMP = orjson.OPT_NON_STR_KEYS


@dataclass
class Snapshot:
    """A window's figures (every replica's, when shared) and each live replica's node views."""

    tier: Tier
    now: float
    replica: str  # the replica that answered
    summary: WindowSummary
    nodes: dict[str, list[dict[str, Any]]]  # replica id → its node views
    shared: bool  # True: every replica's figures (from Redis)
    problem: str | None = None  # why the shared picture could not be read
    replicas: list[str] = field(default_factory=list)


class Board(Protocol):
    replica: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def snapshot(self, tier: Tier) -> Snapshot: ...


def replica_id() -> str:
    """host:pid:random — unique per process, readable in the dashboard."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{os.urandom(2).hex()}"


class LocalBoard:
    """This process's own figures (no Redis)."""

    def __init__(self, rolling: RollingStats, nodes: NodeViews, replica: str | None = None):
        self.rolling = rolling
        self.nodes = nodes
        self.replica = replica or replica_id()
        self._local: dict[str, SlidingWindow] = {}
        self._shared: dict[str, SlidingWindow] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def snapshot(self, tier: Tier) -> Snapshot:
        return self.local(tier)

    def local(self, tier: Tier, problem: str | None = None) -> Snapshot:
        """This process's own window (its closed buckets never change again)."""
        now = self.rolling.now()
        first, last = window_ids(tier, now)
        window = self._local.setdefault(tier.name, SlidingWindow(tier))
        fetched = {
            bid: BucketTotals.of(b for _, b in self.rolling.buckets(tier, bid, bid))
            for bid in window.missing(first, last - 1)
        }
        window.slide(first, last - 1, fetched)
        fresh = {last: BucketTotals.of(b for _, b in self.rolling.buckets(tier, last, last))}
        summary = window.summary(now, fresh)
        return Snapshot(
            tier, now, self.replica, summary, {self.replica: self.nodes()}, False, problem
        )


class BoardKeys:
    """The dashboard's Redis key names under one prefix."""

    def __init__(self, prefix: str = "megacity:dash") -> None:
        if not prefix or any(c in prefix for c in " \n"):
            raise ValueError(f"invalid Redis key prefix {prefix!r}")
        self.prefix = prefix
        self.replicas = f"{prefix}:replicas"

    def bucket(self, tier: Tier, bid: int) -> str:
        return f"{self.prefix}:roll:{tier.name}:{bid}"

    def nodes(self, replica: str) -> str:
        return f"{self.prefix}:nodes:{replica}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key under this prefix (for clean-up)."""
        escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.prefix)
        return f"{escaped}:*"


class RedisBoard(LocalBoard):
    """Publishes this replica's figures every `flush_s` and reads every replica's back."""

    def __init__(
        self,
        redis: Redis,
        rolling: RollingStats,
        nodes: NodeViews,
        *,
        keys: BoardKeys | None = None,
        flush_s: float = 2.0,
        replica: str | None = None,
    ) -> None:
        super().__init__(rolling, nodes, replica)
        self.redis = redis
        self.keys = keys or BoardKeys()
        self.flush_s = flush_s
        self._flushed: dict[
            str, int
        ] = {}  # tier → the bucket id that was current at the last flush
        self._last_flush = 0.0
        self._task: asyncio.Task[None] | None = None
        self._warned = 0.0

    @classmethod
    def from_url(cls, url: str, rolling: RollingStats, nodes: NodeViews, **kw: Any) -> RedisBoard:
        from redis.asyncio import Redis

        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        return cls(client, rolling, nodes, **kw)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="megacity-dashboard-flush")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.flush()  # the last seconds of traffic are not lost
        await self.redis.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.flush()
            except Exception as exc:  # Redis away: keep counting locally, try again later
                self._warn(f"could not publish dashboard figures to Redis: {exc!r}")
            await asyncio.sleep(self.flush_s)

    async def flush(self) -> None:
        """Write the buckets touched since the last flush and this replica's node views."""
        now = self.rolling.now()
        pipe = self.redis.pipeline(transaction=False)
        current: dict[str, int] = {}
        for tier in TIERS:
            last = int(now // tier.step_s)
            first = self._flushed.get(tier.name, last - tier.span_s // tier.step_s)
            for bid, bucket in self.rolling.buckets(tier, first, last):
                key = self.keys.bucket(tier, bid)
                blob = orjson.dumps(bucket.to_json(), option=_DUMP).decode()
                pipe.hset(key, self.replica, blob)
                pipe.expireat(key, int((bid + 1) * tier.step_s + tier.span_s + 60))
            current[tier.name] = last
        ttl = max(int(self.flush_s * 3), 3)
        pipe.set(self.keys.nodes(self.replica), orjson.dumps(self.nodes()), ex=ttl)
        pipe.zadd(self.keys.replicas, {self.replica: now})
        pipe.zremrangebyscore(self.keys.replicas, "-inf", now - 86_400)
        await pipe.execute()
        self._flushed.update(current)
        self._last_flush = time.monotonic()

    async def snapshot(self, tier: Tier) -> Snapshot:
        try:
            if time.monotonic() - self._last_flush > 0.5:
                await self.flush()  # this replica's newest figures are part of the picture
            return await self._read(tier)
        except Exception as exc:
            self._warn(f"could not read the shared dashboard figures from Redis: {exc!r}")
            return self.local(tier, problem=f"Redis unreachable ({type(exc).__name__})")

    async def _read(self, tier: Tier) -> Snapshot:
        """Read the buckets every replica may still change, and the final ones not summed yet.

        A bucket is final once closed for longer than the replicas' flush lag: every
        replica has written it for the last time. Final buckets are read once.
        """
        now = self.rolling.now()
        first, last = window_ids(tier, now)
        lag = 3 * self.flush_s + 2
        final_last = min(int((now - lag) // tier.step_s) - 1, last - 1)
        window = self._shared.setdefault(tier.name, SlidingWindow(tier))
        wanted = window.missing(first, final_last) + list(
            range(max(final_last + 1, first), last + 1)
        )
        pipe = self.redis.pipeline(transaction=False)
        for bid in wanted:
            pipe.hvals(self.keys.bucket(tier, bid))
        pipe.zrangebyscore(self.keys.replicas, now - max(self.flush_s * 3, 3), "+inf")
        *values, live = await pipe.execute()
        read = {
            bid: BucketTotals.of(Bucket.from_json(orjson.loads(v)) for v in found)
            for bid, found in zip(wanted, values, strict=True)
        }
        window.slide(first, final_last, read)
        summary = window.summary(now, {b: t for b, t in read.items() if b > final_last})
        replicas = sorted(r.decode() if isinstance(r, bytes) else str(r) for r in live)
        nodes: dict[str, list[dict[str, Any]]] = {}
        if replicas:
            blobs = await self.redis.mget([self.keys.nodes(r) for r in replicas])
            nodes = {r: orjson.loads(b) for r, b in zip(replicas, blobs, strict=True) if b}
        return Snapshot(tier, now, self.replica, summary, nodes, True, None, replicas)

    def _warn(self, message: str) -> None:
        if time.monotonic() - self._warned > 60:  # once a minute, not once a flush
            self._warned = time.monotonic()
            log.warning(message)


def build_board(
    redis_url: str | None,
    rolling: RollingStats,
    nodes: NodeViews,
    *,
    prefix: str = "megacity:dash",
    flush_s: float = 2.0,
) -> Board:
    """RedisBoard with a Redis URL (every replica's figures), else LocalBoard."""
    if redis_url:
        return RedisBoard.from_url(
            redis_url, rolling, nodes, keys=BoardKeys(prefix), flush_s=flush_s
        )
    return LocalBoard(rolling, nodes)

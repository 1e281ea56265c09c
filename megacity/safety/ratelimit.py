"""Token-bucket rate limits: in memory (one router) or in Redis (every replica shares them).

A bucket holds at most ``rate.amount`` tokens (the burst) and refills at
``rate.amount / rate.per_s`` tokens per second. ``take`` charges several buckets at once
(user, zone, engine ...) all or nothing; ``adjust`` settles a charge afterwards (LLM
tokens actually used against the estimate) and may leave a bucket in debt, so that the
next ``take`` waits until it has paid it back.

A cost above a bucket's capacity can never be paid: it is refused, ``refused_by`` names
the bucket and ``retry_after_s`` is the bucket's full refill time (capacity / refill), a
finite hint rather than infinity. Callers that can, check ``cost <= rate.capacity`` first.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # redis is imported only when REDIS_URL is set
    from redis.asyncio import Redis

from megacity.safety import limits_keys as lk

log = logging.getLogger("megacity.ratelimit")

LIMITER_UNAVAILABLE = "limiter-unavailable"  # refused_by when Redis fails and fail_open=False
UNAVAILABLE_RETRY_S = 1.0  # retry_after_s of that refusal
WARN_EVERY_S = 10.0  # at most one "Redis failed" warning per this many seconds
# Tokens short of the cost by less than this fraction of the capacity count as enough: a
# caller who waited exactly retry_after_s must not be refused for a rounding error.
SLACK = 1e-9

_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}
_RATE_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    """``amount`` tokens per ``per_s`` seconds; the burst (capacity) is ``amount``."""

    amount: float
    per_s: float

    def __post_init__(self) -> None:
        for name, value in (("amount", self.amount), ("per_s", self.per_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"a rate's {name} must be a positive number, not {value!r}")

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"60/minute"``, ``"1000/min"``, ``"10/s"``, ``"5000/hour"``, ``"30/10s"``."""
        match = _RATE_TEXT.match(text.lower())
        if match is None or match[3] not in _UNITS:
            raise ValueError(
                f"invalid rate {text!r}: expected '<amount>/[<count>]<unit>' such as "
                f"'60/minute' or '30/10s' (units: s, min, hour, day)"
            )
        return cls(float(match[1]), float(match[2] or 1) * _UNITS[match[3]])

    @property
    def capacity(self) -> float:
        """The most tokens a bucket holds (the burst)."""
        return self.amount

    @property
    def refill_per_s(self) -> float:
        """Tokens added per second."""
        return self.amount / self.per_s


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket to charge ``cost`` tokens, e.g. ``user:<hashed id>:requests``."""

    key: str
    rate: Rate
    cost: float = 1.0

    def __post_init__(self) -> None:
        if not self.key or any(c.isspace() for c in self.key):
            raise ValueError(f"invalid bucket key {self.key!r}")
        if not (math.isfinite(self.cost) and self.cost >= 0):
            raise ValueError(f"a bucket's cost must be a number >= 0, not {self.cost!r}")


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed or not; if not, which bucket refused and how long to wait (s)."""

    allowed: bool
    retry_after_s: float  # the longest wait among the buckets that lack tokens; 0 if allowed
    remaining: Mapping[str, float]  # bucket key → tokens left after this decision
    refused_by: str | None  # the first bucket that lacked tokens (or LIMITER_UNAVAILABLE)


class RateLimiter(Protocol):
    """Token buckets shared by the requests of one router (memory) or all of them (Redis)."""

    async def take(self, buckets: Sequence[Bucket]) -> Decision:
        """Charge every bucket its cost, or none of them."""
        ...

    async def adjust(self, bucket: Bucket, amount: float) -> None:
        """Charge (positive) or refund (negative) ``amount`` tokens now; may leave debt."""
        ...

    async def close(self) -> None: ...


class LogThrottle:
    """One warning per ``interval_s`` (s) at most: a flapping Redis must not flood the log."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = WARN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._last = -math.inf
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._last < self._interval_s:
            self._suppressed += 1
            return
        self._last = now
        suppressed, self._suppressed = self._suppressed, 0
        suffix = f" ({suppressed} more since the last warning)" if suppressed else ""
        self._logger.warning(message + suffix, *args)


def _check_unique(buckets: Sequence[Bucket]) -> None:
    # Two entries of one key would each see the same level and the bucket pay only once.
    if len({b.key for b in buckets}) != len(buckets):
        raise ValueError("the same bucket key appears twice in one take")


def _refill(tokens: float, elapsed_s: float, rate: Rate) -> float:
    """The level after ``elapsed_s`` seconds of refill, at most the capacity."""
    return min(rate.capacity, tokens + max(0.0, elapsed_s) * rate.refill_per_s)


def _judge(buckets: Sequence[Bucket], levels: Sequence[float]) -> tuple[int | None, float]:
    """The index of the first bucket lacking tokens (None: all have enough) and the wait (s)."""
    refused: int | None = None
    wait = 0.0
    for i, (bucket, level) in enumerate(zip(buckets, levels, strict=True)):
        rate = bucket.rate
        if bucket.cost > rate.capacity:
            lack = rate.capacity / rate.refill_per_s
        elif level < bucket.cost - SLACK * rate.capacity:
            lack = (bucket.cost - level) / rate.refill_per_s
        else:
            continue
        refused = i if refused is None else refused
        wait = max(wait, lack)
    return refused, wait


class MemoryRateLimiter:
    """Token buckets in a dict, for a router on its own; bounded to ``max_keys`` buckets.

    A missing bucket is a full one: full buckets are dropped, idle ones are swept once
    full again, and past ``max_keys`` the least recently used goes (it comes back full).
    ``take`` never awaits, so asyncio tasks cannot interleave inside it.
    """

    _SWEEP = 4  # idle buckets looked at per call: amortised O(1)

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._clock = clock
        self._max_keys = max_keys
        # key → (tokens, when they were counted, when the bucket is full again), LRU order
        self._state: OrderedDict[str, tuple[float, float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._state)

    async def take(self, buckets: Sequence[Bucket]) -> Decision:
        _check_unique(buckets)
        now = self._clock()
        levels = [self._level(b, now) for b in buckets]
        refused, wait = _judge(buckets, levels)
        if refused is None:
            levels = [level - b.cost for b, level in zip(buckets, levels, strict=True)]
            for bucket, level in zip(buckets, levels, strict=True):
                self._store(bucket, level, now)
        self._sweep(now)
        return Decision(
            allowed=refused is None,
            retry_after_s=wait,
            remaining={b.key: level for b, level in zip(buckets, levels, strict=True)},
            refused_by=None if refused is None else buckets[refused].key,
        )

    async def adjust(self, bucket: Bucket, amount: float) -> None:
        now = self._clock()
        level = min(bucket.rate.capacity, self._level(bucket, now) - amount)
        self._store(bucket, level, now)

    async def close(self) -> None:
        self._state.clear()

    def _level(self, bucket: Bucket, now: float) -> float:
        entry = self._state.get(bucket.key)
        if entry is None:
            return bucket.rate.capacity
        tokens, then, _ = entry
        return _refill(tokens, now - then, bucket.rate)

    def _store(self, bucket: Bucket, tokens: float, now: float) -> None:
        rate = bucket.rate
        if tokens >= rate.capacity:
            self._state.pop(bucket.key, None)
            return
        full_at = now + (rate.capacity - tokens) / rate.refill_per_s
        self._state[bucket.key] = (tokens, now, full_at)
        self._state.move_to_end(bucket.key)
        if len(self._state) > self._max_keys:
            self._state.popitem(last=False)

    def _sweep(self, now: float) -> None:
        for _ in range(self._SWEEP):
            oldest = next(iter(self._state.items()), None)
            if oldest is None or oldest[1][2] > now:
                return
            del self._state[oldest[0]]


class RedisRateLimiter:
    """Token buckets in Redis, one hash per bucket, charged by one Lua call per ``take``.

    Redis failing (down, timeout): ``take`` allows (``fail_open``, the default: the limiter
    protects capacity, and a Redis outage must not take the AI service down) or refuses
    with ``refused_by=LIMITER_UNAVAILABLE``; ``adjust`` drops the charge. Either way one
    warning per ``WARN_EVERY_S`` seconds at most.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "megacity:limits",
        fail_open: bool = True,
        owns_client: bool = False,
    ) -> None:
        from redis.exceptions import RedisError

        self._errors = (RedisError, OSError)
        self.redis = redis
        self.keys = lk.LimitKeys(prefix)
        self.fail_open = fail_open
        self._owns_client = owns_client
        self._take = redis.register_script(lk.TAKE)
        self._adjust = redis.register_script(lk.ADJUST)
        self._warn = LogThrottle(log)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "megacity:limits",
        fail_open: bool = True,
        timeout_s: float = 0.5,
    ) -> RedisRateLimiter:
        """A limiter with its own client (closed by ``close``); ``timeout_s`` bounds each call."""
        from redis.asyncio import Redis

        client = Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True
        )
        return cls(client, prefix=prefix, fail_open=fail_open, owns_client=True)

    async def take(self, buckets: Sequence[Bucket]) -> Decision:
        if not buckets:
            return Decision(True, 0.0, {}, None)
        _check_unique(buckets)
        args = [repr(SLACK)]
        for b in buckets:
            args += [repr(b.rate.capacity), repr(b.rate.refill_per_s), repr(float(b.cost))]
        try:
            reply: list[Any] = await self._take(
                keys=[self.keys.bucket(b.key) for b in buckets], args=args
            )
        except self._errors as exc:
            return self._unavailable(exc)
        refused = int(reply[0])
        return Decision(
            allowed=refused == 0,
            retry_after_s=float(reply[1]),
            remaining={b.key: float(level) for b, level in zip(buckets, reply[2:], strict=True)},
            refused_by=None if refused == 0 else buckets[refused - 1].key,
        )

    async def adjust(self, bucket: Bucket, amount: float) -> None:
        args = [repr(bucket.rate.capacity), repr(bucket.rate.refill_per_s), repr(float(amount))]
        try:
            await self._adjust(keys=[self.keys.bucket(bucket.key)], args=args)
        except self._errors as exc:
            self._warn.warning(
                "rate limiter: Redis failed, adjustment of %s dropped: %s", bucket.key, exc
            )

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()

    def _unavailable(self, exc: Exception) -> Decision:
        verdict = "allowing" if self.fail_open else "refusing"
        self._warn.warning("rate limiter: Redis failed, %s requests: %s", verdict, exc)
        if self.fail_open:
            return Decision(True, 0.0, {}, None)
        return Decision(False, UNAVAILABLE_RETRY_S, {}, LIMITER_UNAVAILABLE)

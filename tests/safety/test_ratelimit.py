"""Token buckets in memory (fake clock) and in the real Redis (real time, short refills)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from megacity.jobs.testing import redis_url_or_skip, unique_prefix, wipe
from megacity.safety.limits_keys import LimitKeys
from megacity.safety.ratelimit import (
    LIMITER_UNAVAILABLE,
    Bucket,
    Decision,
    MemoryRateLimiter,
    Rate,
    RateLimiter,
    RedisRateLimiter,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Space:
    """One backend: memory on a fake clock, or Redis under a prefix of its own (real time)."""

    kind: str
    url: str = ""
    keys: LimitKeys = field(default_factory=lambda: LimitKeys(unique_prefix()))
    clock: FakeClock = field(default_factory=FakeClock)

    def limiter(self) -> RateLimiter:
        if self.kind == "memory":
            return MemoryRateLimiter(clock=self.clock)
        return RedisRateLimiter.from_url(self.url, prefix=self.keys.prefix)

    async def wait(self, seconds: float) -> None:
        if self.kind == "memory":
            self.clock.now += seconds
        else:
            await asyncio.sleep(seconds)

    @property
    def tolerance(self) -> float:
        """How far (s, tokens) real time may move a result between two calls."""
        return 1e-9 if self.kind == "memory" else 0.03


@pytest.fixture(params=["memory", "redis"])
def space(request: pytest.FixtureRequest) -> Iterator[Space]:
    if request.param == "memory":
        yield Space("memory")
        return
    url = redis_url_or_skip()
    space = Space("redis", url)
    try:
        yield space
    finally:
        wipe(url, space.keys)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "per_s"),
    [
        ("60/minute", 60, 60),
        ("1000/min", 1000, 60),
        ("10/s", 10, 1),
        ("5000/hour", 5000, 3600),
        ("30/10s", 30, 10),
        (" 2.5 / 2 Hours ", 2.5, 7200),
        ("100/day", 100, 86400),
    ],
)
def test_rates_parse(text: str, amount: float, per_s: float) -> None:
    assert Rate.parse(text) == Rate(amount, per_s)


@pytest.mark.parametrize("text", ["", "60", "60/fortnight", "-5/s", "0/s", "5/0s", "a/s", "5/s/s"])
def test_bad_rates_are_refused_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(text)


def test_rates_and_buckets_check_their_numbers() -> None:
    rate = Rate(60, 60)
    assert (rate.capacity, rate.refill_per_s) == (60, 1)
    for amount, per_s in [(-1, 1), (1, -1), (0, 1), (1, 0), (float("nan"), 1), (float("inf"), 1)]:
        with pytest.raises(ValueError):
            Rate(amount, per_s)
    with pytest.raises(ValueError, match="cost"):
        Bucket("user:a", rate, cost=-1)
    with pytest.raises(ValueError, match="key"):
        Bucket("", rate)
    with pytest.raises(ValueError, match="key"):
        Bucket("user a", rate)


# --- arithmetic -----------------------------------------------------------------------


def test_memory_refill_burst_and_retry_after_are_exact() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    bucket = Bucket("user:a", Rate(10, 1))  # 10 tokens, 10 per second

    async def run() -> None:
        for left in range(9, -1, -1):
            decision = await limiter.take([bucket])
            assert decision == Decision(True, 0.0, {"user:a": left}, None)
        refused = await limiter.take([bucket])
        assert (refused.allowed, refused.refused_by) == (False, "user:a")
        assert refused.retry_after_s == pytest.approx(0.1, abs=1e-9)
        clock.now += 0.05
        assert (await limiter.take([bucket])).retry_after_s == pytest.approx(0.05, abs=1e-9)
        clock.now += 0.05
        assert (await limiter.take([bucket])).allowed
        clock.now += 3600  # a long idle time refills to the capacity, no more
        assert (await limiter.take([bucket])).remaining["user:a"] == pytest.approx(9)

    asyncio.run(run())


def test_buckets_refill_at_their_rate(space: Space) -> None:
    bucket = Bucket("user:a", Rate(5, 0.5))  # 5 tokens, 10 per second

    async def run() -> None:
        limiter = space.limiter()
        try:
            for _ in range(5):
                assert (await limiter.take([bucket])).allowed
            refused = await limiter.take([bucket])
            assert not refused.allowed and refused.refused_by == "user:a"
            assert 0.1 - space.tolerance <= refused.retry_after_s <= 0.1 + 1e-9
            assert refused.remaining["user:a"] == pytest.approx(0, abs=10 * space.tolerance)
            await space.wait(refused.retry_after_s + 0.005)
            assert (await limiter.take([bucket])).allowed
            assert not (await limiter.take([bucket])).allowed
        finally:
            await limiter.close()

    asyncio.run(run())


def test_fractional_zero_and_oversized_costs(space: Space) -> None:
    rate = Rate(2, 200)  # 0.01 token per second: no refill to speak of within the test

    async def run() -> None:
        limiter = space.limiter()
        try:
            half = await limiter.take([Bucket("k", rate, cost=0.5)])
            assert half.allowed and half.remaining["k"] == pytest.approx(1.5, abs=1e-3)
            free = await limiter.take([Bucket("k", rate, cost=0)])
            assert free.allowed and free.remaining["k"] == pytest.approx(1.5, abs=1e-3)
            # More than the capacity never fits: refused, wait = the full refill time.
            huge = await limiter.take([Bucket("k", rate, cost=3)])
            assert (huge.allowed, huge.refused_by) == (False, "k")
            assert huge.retry_after_s == pytest.approx(200)
            assert huge.remaining["k"] == pytest.approx(1.5, abs=1e-3)  # not charged
            assert (await limiter.take([])) == Decision(True, 0.0, {}, None)
            with pytest.raises(ValueError, match="twice"):
                await limiter.take([Bucket("k", rate), Bucket("k", rate)])
        finally:
            await limiter.close()

    asyncio.run(run())


def test_all_or_nothing_across_user_zone_and_engine(space: Space) -> None:
    user = Bucket("user:u1:requests", Rate(10, 60))
    zone = Bucket("zone:univprep:requests", Rate(2, 60))  # one token per 30 s
    engine = Bucket("engine:llm:requests", Rate(10, 60))

    async def run() -> None:
        limiter = space.limiter()
        try:
            for _ in range(2):
                assert (await limiter.take([user, zone, engine])).allowed
            refused = await limiter.take([user, zone, engine])
            assert (refused.allowed, refused.refused_by) == (False, zone.key)
            assert refused.retry_after_s == pytest.approx(30, abs=0.1)
            assert refused.remaining[user.key] == pytest.approx(8, abs=0.01)
            assert refused.remaining[engine.key] == pytest.approx(8, abs=0.01)
            # Nothing was charged by the refusal.
            alone = await limiter.take([user])
            assert alone.remaining[user.key] == pytest.approx(7, abs=0.01)
        finally:
            await limiter.close()

    asyncio.run(run())


def test_the_longest_wait_is_reported(space: Space) -> None:
    fast = Bucket("fast", Rate(1, 1))
    slow = Bucket("slow", Rate(1, 100))

    async def run() -> None:
        limiter = space.limiter()
        try:
            assert (await limiter.take([fast, slow])).allowed
            refused = await limiter.take([fast, slow])
            assert refused.refused_by == "fast"  # the first that lacks tokens
            assert refused.retry_after_s == pytest.approx(100, abs=0.1)  # the longest wait
        finally:
            await limiter.close()

    asyncio.run(run())


# --- concurrency ----------------------------------------------------------------------


def test_200_concurrent_takes_on_50_tokens_allow_exactly_50(space: Space) -> None:
    bucket = Bucket("zone:hot", Rate(50, 3600))

    async def run() -> None:
        # Redis: two limiters, two clients and connection pools, racing on one bucket.
        limiters = (
            [space.limiter(), space.limiter()] if space.kind == "redis" else [space.limiter()]
        )
        try:
            decisions = await asyncio.gather(
                *(limiters[i % len(limiters)].take([bucket]) for i in range(200))
            )
        finally:
            for limiter in limiters:
                await limiter.close()
        assert sum(d.allowed for d in decisions) == 50

    asyncio.run(run())


# --- adjust, debt, expiry -------------------------------------------------------------


def test_adjust_charges_into_debt_and_refunds_up_to_full(space: Space) -> None:
    bucket = Bucket("zone:univprep:llm_tokens", Rate(1000, 100))  # 10 tokens per second

    async def run() -> None:
        limiter = space.limiter()
        try:
            estimate = await limiter.take([Bucket(bucket.key, bucket.rate, cost=500)])
            assert estimate.allowed
            await limiter.adjust(bucket, 1000)  # used 1500 in all: 500 tokens of debt
            refused = await limiter.take([bucket])
            assert not refused.allowed
            assert refused.remaining[bucket.key] == pytest.approx(-500, abs=1)
            assert refused.retry_after_s == pytest.approx(50.1, abs=0.1)  # (1 + 500) / 10
            await limiter.adjust(bucket, -10_000)  # a refund fills the bucket, no more
            assert (await limiter.take([bucket])).remaining[bucket.key] == pytest.approx(999)
        finally:
            await limiter.close()

    asyncio.run(run())


def test_redis_buckets_expire_when_they_would_be_full() -> None:
    url = redis_url_or_skip()
    keys = LimitKeys(unique_prefix())
    bucket = Bucket("user:a", Rate(10, 10))  # one token per second

    async def run() -> None:
        client = Redis.from_url(url)  # bytes replies: the limiter reads either kind
        limiter = RedisRateLimiter(client, prefix=keys.prefix)
        try:
            await limiter.take([Bucket("user:a", bucket.rate, cost=3)])
            assert 2900 <= await client.pttl(keys.bucket("user:a")) <= 3000
            await limiter.adjust(bucket, -3)  # full again: nothing to remember
            assert await client.exists(keys.bucket("user:a")) == 0
            await limiter.take([Bucket("user:b", Rate(1, 0.05))])
            await asyncio.sleep(0.1)
            assert await client.exists(keys.bucket("user:b")) == 0
        finally:
            await limiter.close()
            await client.aclose()

    try:
        asyncio.run(run())
    finally:
        wipe(url, keys)


def test_memory_forgets_full_buckets_and_keeps_at_most_max_keys() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock, max_keys=3)
    rate = Rate(10, 10)

    async def run() -> None:
        for name in "abcde":
            await limiter.take([Bucket(name, rate)])
        assert len(limiter) == 3  # the least recently used went
        clock.now += 1.0  # every bucket is full again
        await limiter.take([Bucket("f", rate, cost=0)])
        assert len(limiter) == 0
        await limiter.adjust(Bucket("g", rate), 4)
        await limiter.adjust(Bucket("g", rate), -4)
        assert len(limiter) == 0

    asyncio.run(run())


# --- Redis failing --------------------------------------------------------------------


def test_redis_down_fails_open_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    bucket = Bucket("user:a", Rate(1, 60))

    async def run() -> list[Decision]:
        limiter = RedisRateLimiter.from_url(url)
        try:
            decisions = [await limiter.take([bucket]) for _ in range(3)]
            await limiter.adjust(bucket, 5)  # dropped, never raised
            return decisions
        finally:
            await limiter.close()

    with caplog.at_level(logging.WARNING, logger="megacity.ratelimit"):
        decisions = asyncio.run(run())
    assert decisions == [Decision(True, 0.0, {}, None)] * 3
    warnings = [r for r in caplog.records if r.name == "megacity.ratelimit"]
    assert len(warnings) == 1 and "allowing" in warnings[0].getMessage()


def test_redis_down_fails_closed_when_configured() -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"

    async def run() -> Decision:
        limiter = RedisRateLimiter.from_url(url, fail_open=False)
        try:
            return await limiter.take([Bucket("user:a", Rate(1, 60))])
        finally:
            await limiter.close()

    decision = asyncio.run(run())
    assert (decision.allowed, decision.refused_by) == (False, LIMITER_UNAVAILABLE)
    assert decision.retry_after_s == 1.0

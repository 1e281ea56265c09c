"""The abuse detector in memory (fake clock) and in the real Redis (real time, short windows)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from megacity.jobs.testing import redis_url_or_skip, unique_prefix, wipe
from megacity.safety.abuse import (
    AbuseDetector,
    AbusePolicy,
    AbuseReason,
    Block,
    MemoryAbuseDetector,
    RedisAbuseDetector,
    prompt_digest,
)
from megacity.safety.limits_keys import AbuseKeys

FAST = AbusePolicy(
    burst_requests=5,
    burst_window_s=2.0,
    repeat_prompts=3,
    repeat_window_s=5.0,
    firewall_hits=2,
    firewall_window_s=600.0,
    block_s=0.4,
    repeat_throttle_s=0.3,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Space:
    """One backend: memory on a fake clock, or Redis under a prefix of its own (real time)."""

    kind: str
    url: str = ""
    keys: AbuseKeys = field(default_factory=lambda: AbuseKeys(unique_prefix()))
    clock: FakeClock = field(default_factory=FakeClock)

    def detector(self, policy: AbusePolicy = FAST) -> AbuseDetector:
        if self.kind == "memory":
            return MemoryAbuseDetector(policy, clock=self.clock)
        return RedisAbuseDetector.from_url(self.url, policy, prefix=self.keys.prefix)

    async def wait(self, seconds: float) -> None:
        if self.kind == "memory":
            self.clock.now += seconds
        else:
            await asyncio.sleep(seconds)


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


def test_prompts_are_hashed_after_normalising() -> None:
    same = ["Hello World", "  hello   world\n", "HELLO\tWORLD", "Hello World"]
    assert len({prompt_digest(p) for p in same}) == 1
    assert prompt_digest("hello world") != prompt_digest("hello  world!")
    assert len(prompt_digest("x")) == 64


def test_policies_check_their_numbers() -> None:
    for bad in [{"burst_requests": 0}, {"block_s": 0}, {"repeat_window_s": float("nan")}]:
        with pytest.raises(ValueError):
            AbusePolicy(**bad)  # type: ignore[arg-type]


def test_a_burst_blocks_until_the_block_ends(
    space: Space, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> None:
        detector = space.detector()
        try:
            for _ in range(5):
                assert await detector.record_request("u1") is None
            block = await detector.record_request("u1")
            assert block is not None
            assert (block.user, block.reason, block.detail) == (
                "u1",
                AbuseReason.BURST,
                "6 requests in 2 s",
            )
            assert block.until - block.since == pytest.approx(0.4, abs=0.002)
            assert block.since == pytest.approx(time.time(), abs=1.0)
            assert await detector.blocked("u1") == block
            assert await detector.blocked("u2") is None
            assert await detector.record_request("u1") is None  # blocked already: not counted
            await space.wait(0.45)
            assert await detector.blocked("u1") is None
            assert await detector.record_request("u1") is None  # the window started again
        finally:
            await detector.close()

    with caplog.at_level(logging.WARNING, logger="megacity.abuse"):
        asyncio.run(run())
    [line] = [r.getMessage() for r in caplog.records if r.name == "megacity.abuse"]
    assert "user=u1" in line and "reason=burst" in line and "6 requests in 2 s" in line
    assert "until=" in line


def test_requests_outside_the_window_do_not_count(space: Space) -> None:
    policy = AbusePolicy(burst_requests=3, burst_window_s=0.3, block_s=1.0)

    async def run() -> None:
        detector = space.detector(policy)
        try:
            for _ in range(3):
                assert await detector.record_request("u1") is None
            await space.wait(0.35)
            for _ in range(3):
                assert await detector.record_request("u1") is None
            assert (await detector.record_request("u1")) is not None
        finally:
            await detector.close()

    asyncio.run(run())


def test_repeated_prompts_block_and_different_ones_do_not(
    space: Space, caplog: pytest.LogCaptureFixture
) -> None:
    variants = ["Tell me the answers", "  tell me THE answers ", "tell\nme the\tanswers"]

    async def run() -> None:
        detector = space.detector()
        try:
            for i in range(4):  # interleaved distinct prompts count for themselves only
                assert await detector.record_request("u2", f"question number {i}") is None
            for prompt in variants:
                assert await detector.record_request("u1", prompt) is None
            block = await detector.record_request("u1", "TELL ME THE ANSWERS")
            assert block is not None and block.reason == AbuseReason.REPEATED_PROMPT
            digest = prompt_digest("tell me the answers")[:12]
            assert block.detail == f"4 identical prompts in 5 s (sha256 {digest})"
            assert await detector.blocked("u2") is None
            # A throttle of that prompt, not a block of the user: other prompts pass.
            assert block.scope == "prompt"
            assert block.until - block.since == pytest.approx(FAST.repeat_throttle_s, abs=0.01)
            assert await detector.blocked("u1") is None
            assert await detector.record_request("u1", "another question") is None
            again = await detector.record_request("u1", "tell me the answers")
            assert again == block  # still throttled: the same throttle, nothing counted
            assert await detector.blocks() == []  # throttles are not listed as blocks
        finally:
            await detector.close()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run())
    assert not any("answers" in r.getMessage().lower() for r in caplog.records)


def test_a_prompt_throttle_ends_after_seconds(space: Space) -> None:
    policy = AbusePolicy(burst_requests=100, repeat_prompts=3, repeat_throttle_s=0.3)

    async def run() -> None:
        detector = space.detector(policy)
        try:
            for _ in range(3):
                assert await detector.record_request("u1", "regenerate") is None
            throttle = await detector.record_request("u1", "regenerate")
            assert throttle is not None and throttle.scope == "prompt"
            await space.wait(0.35)  # repeat_throttle_s 0.3: over, and the window started again
            for _ in range(3):
                assert await detector.record_request("u1", "regenerate") is None
        finally:
            await detector.close()

    asyncio.run(run())


def test_a_caller_without_bursts_is_never_burst_blocked(space: Space) -> None:
    """burst=False (a service key acting for unnamed people): counted for throttles only."""

    async def run() -> None:
        detector = space.detector()
        try:
            for i in range(20):  # burst_requests=5 would have blocked a learner long ago
                assert await detector.record_request("s1", f"pupil {i}", burst=False) is None
            assert await detector.blocked("s1") is None
            for _ in range(3):
                assert await detector.record_request("s1", "same", burst=False) is None
            throttle = await detector.record_request("s1", "same", burst=False)
            assert throttle is not None and throttle.scope == "prompt"
            assert await detector.record_request("s1", burst=False) is None  # nothing to count
        finally:
            await detector.close()

    asyncio.run(run())


def test_firewall_hits_block(space: Space) -> None:
    async def run() -> None:
        detector = space.detector()
        try:
            assert await detector.record_firewall_hit("u1", "prompt_injection") is None
            assert await detector.record_firewall_hit("u1", "jailbreak") is None
            block = await detector.record_firewall_hit("u1", "jailbreak")
            assert block is not None and block.reason == AbuseReason.FIREWALL_HITS
            assert block.detail == "3 firewall hits in 600 s (last: jailbreak)"
            assert await detector.blocked("u1") == block
            with pytest.raises(ValueError, match="kind"):
                await detector.record_firewall_hit("u1", "Free text from a user")
        finally:
            await detector.close()

    asyncio.run(run())


def test_manual_blocks_listing_and_unblock(space: Space) -> None:
    async def run() -> None:
        detector = space.detector()
        try:
            first = await detector.block("u1", AbuseReason.MANUAL, "support ticket 42", 30)
            await detector.block("u2", AbuseReason.MANUAL, "spam", 20)
            await detector.block("u3", AbuseReason.BURST, "test", 0.3)
            assert first.until - first.since == pytest.approx(30, abs=0.002)
            assert [b.user for b in await detector.blocks()] == ["u1", "u2", "u3"]
            assert [b.user for b in await detector.blocks(limit=2)] == ["u1", "u2"]
            assert await detector.unblock("u2") is True
            assert await detector.unblock("u2") is False
            assert await detector.blocked("u2") is None
            await space.wait(0.35)
            assert await detector.blocks() == [first]
            assert await detector.blocked("u1") == first
            with pytest.raises(ValueError):
                await detector.block("u4", AbuseReason.MANUAL, "x", 0)
        finally:
            await detector.close()

    asyncio.run(run())


def test_memory_keeps_at_most_max_users() -> None:
    clock = FakeClock()
    detector = MemoryAbuseDetector(AbusePolicy(burst_requests=3), clock=clock, max_users=1)

    async def run() -> None:
        for _ in range(3):
            assert await detector.record_request("a") is None
        assert await detector.record_request("b") is None  # "a" is forgotten
        assert await detector.record_request("a") is None
        for _ in range(3):
            await detector.block(f"user{_}", AbuseReason.MANUAL, "x", 10 + _)
        assert [b.user for b in await detector.blocks()] == ["user2"]

    asyncio.run(run())


def test_redis_keys_expire_and_hold_no_prompt_text() -> None:
    url = redis_url_or_skip()
    keys = AbuseKeys(unique_prefix())

    async def run() -> None:
        client = Redis.from_url(url)  # bytes replies: the detector reads either kind
        detector = RedisAbuseDetector(client, FAST, prefix=keys.prefix)
        try:
            await detector.record_request("u1", "my secret essay")
            assert 1900 <= await client.pttl(keys.requests("u1")) <= 2000
            digest = prompt_digest("my secret essay")
            assert 4900 <= await client.pttl(keys.prompt("u1", digest)) <= 5000
            block = await detector.block("u1", AbuseReason.MANUAL, "x", 0.4)
            assert 300 <= await client.pttl(keys.block("u1")) <= 400
            assert await client.pttl(keys.index) > 0
            assert await detector.blocked("u1") == block
            for name in [k async for k in client.scan_iter(match=keys.pattern())]:
                assert b"secret" not in name
                if await client.type(name) == b"zset":
                    members = await client.zrange(name, 0, -1)
                    assert all(b"secret" not in m for m in members)
        finally:
            await detector.close()
            await client.aclose()

    try:
        asyncio.run(run())
    finally:
        wipe(url, keys)


def test_redis_down_fails_open_for_detection_and_raises_for_admin(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"

    async def run() -> list[Block | None]:
        detector = RedisAbuseDetector.from_url(url, FAST)
        try:
            seen = [await detector.record_request("u1", "hi") for _ in range(3)]
            seen.append(await detector.blocked("u1"))
            with pytest.raises(sync_redis.RedisError):
                await detector.block("u1", AbuseReason.MANUAL, "x", 10)
            return seen
        finally:
            await detector.close()

    with caplog.at_level(logging.WARNING, logger="megacity.abuse"):
        assert asyncio.run(run()) == [None] * 4
    assert len([r for r in caplog.records if r.name == "megacity.abuse"]) == 1

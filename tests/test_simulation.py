"""The stand-in's simulated engine: prefix cache of chained token blocks, timing, slots."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from megacity.routing.signals import parse_signals
from megacity.simulation import (
    BYTES_PER_TOKEN,
    PrefixCache,
    SimulatedEngine,
    SimulationConfig,
    render_prompt,
    token_blocks,
)

SYSTEM = "You are a patient Korean tutor. " * 8  # 256 bytes: 64 tokens, 4 blocks of 16


def chat(*turns: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": SYSTEM}]
    messages += [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)
    ]
    return {"model": "m", "messages": messages, "max_tokens": 4}


def test_blocks_chain_over_the_whole_prefix() -> None:
    a = token_blocks(render_prompt(chat("first question " * 10)), 16)
    b = token_blocks(render_prompt(chat("first question " * 10, "answer", "more")), 16)
    assert len(a) >= 5 and b[: len(a)] == a  # a longer conversation extends the blocks
    c = token_blocks(render_prompt(chat("other question " * 10)), 16)
    shared = next(i for i, (x, y) in enumerate(zip(a, c, strict=False)) if x != y)
    assert shared >= 4  # the system prompt's blocks are shared …
    assert all(x != y for x, y in zip(a[shared:], c[shared:], strict=False))  # … nothing after
    # A partial last block is not cached (as in vLLM): 63 tokens make 3 blocks, not 4.
    assert len(token_blocks(b"x" * (63 * BYTES_PER_TOKEN), 16)) == 3


def test_lru_evicts_the_least_recently_used_block() -> None:
    cache = PrefixCache(capacity_blocks=3)
    cache.insert([b"a", b"b", b"c"])
    assert cache.match([b"a"]) == 1  # touches a: b is now the oldest
    cache.insert([b"d"])
    assert cache.match([b"b"]) == 0
    assert cache.match([b"a", b"c", b"d"]) == 3 and len(cache) == 3
    assert cache.match([b"x", b"a"]) == 0  # only a leading run counts


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def answer(engine: SimulatedEngine, body: dict[str, Any]) -> tuple[bytes, Any]:
    text = b""
    prefill = None
    async for piece, cost in engine.generate(body):
        text += piece
        prefill = cost
    return text, prefill


def test_second_turn_prefills_only_what_is_new() -> None:
    config = SimulationConfig(base_ttft_ms=0.0, prefill_ms_per_token=0.001, decode_tokens_per_s=1e6)
    engine = SimulatedEngine(config)

    async def scenario() -> None:
        first_body = chat("How do I say 'thank you'?" * 4)
        text, first = await answer(engine, first_body)
        assert first.cached_tokens == 0
        assert len(text) == 4 * BYTES_PER_TOKEN  # max_tokens decoded
        second_body = chat("How do I say 'thank you'?" * 4, text.decode(), "And politely?")
        _, second = await answer(engine, second_body)
        assert second.prompt_tokens > first.prompt_tokens
        # Everything of the first prompt but its partial last block came from the cache.
        assert second.cached_tokens == (first.prompt_tokens // 16) * 16
        uncached = second.prompt_tokens - second.cached_tokens
        assert second.ttft_s == pytest.approx(0.001 * uncached / 1000)
        # Another learner shares only the system prompt's blocks.
        _, other = await answer(engine, chat("Where is the station?" * 4))
        assert other.cached_tokens == 64

    run(scenario())


def test_reset_empties_the_cache_and_counters() -> None:
    engine = SimulatedEngine(SimulationConfig(prefill_ms_per_token=0.0, base_ttft_ms=0.0))

    async def scenario() -> None:
        await answer(engine, chat("hello " * 40))
        assert len(engine.cache) > 0 and engine.prompt_tokens_total > 0
        engine.reset()
        assert len(engine.cache) == 0 and engine.prompt_tokens_total == 0
        _, again = await answer(engine, chat("hello " * 40))
        assert again.cached_tokens == 0

    run(scenario())


def test_requests_beyond_max_running_wait_and_metrics_show_it() -> None:
    engine = SimulatedEngine(
        SimulationConfig(max_running=1, base_ttft_ms=0.0, prefill_ms_per_token=0.0)
    )
    release = asyncio.Event()

    async def held() -> None:
        async for _ in engine.generate(chat("a long one")):
            await release.wait()  # keeps its slot until told

    async def scenario() -> None:
        first = asyncio.create_task(held())
        second = asyncio.create_task(answer(engine, chat("short")))
        for _ in range(500):  # a condition, not a fixed sleep
            if engine.running == 1 and engine.waiting == 1:
                break
            await asyncio.sleep(0.01)
        signals = parse_signals(engine.metrics())
        assert (signals.running, signals.waiting) == (1.0, 1.0)
        assert signals.kv_cache is not None and 0 < signals.kv_cache < 1
        release.set()
        await first
        await second
        done = parse_signals(engine.metrics())
        assert (done.running, done.waiting, done.kv_cache) == (0.0, 0.0, 0.0)
        assert done.prefix_queries is not None and done.prefix_hits is not None
        assert done.prefix_queries >= done.prefix_hits >= 0

    run(scenario())


def test_reconfigure_changes_slots_and_capacity() -> None:
    engine = SimulatedEngine()
    engine.reconfigure(max_running="2", cache_blocks=10, unknown=1)
    assert engine.config.max_running == 2 and engine.cache.capacity == 10

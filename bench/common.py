"""What the benchmarks share: a closed-loop load runner, percentiles and readable tables."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def closed_loop(
    one: Callable[[], Awaitable[None]], concurrency: int, total: int, warmup: int
) -> float:
    """Run `warmup` calls, then `total` calls from `concurrency` workers; seconds taken."""
    for _ in range(warmup):
        await one()
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``runs`` calls of ``fn``, in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """Print right-aligned columns under a title."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


# Limits so high they never refuse: the bench measures what checking them costs.
_NO_REFUSALS = (
    '{"user_requests": "100000000/s", "zone_requests": "100000000/s",'
    ' "engine_requests": {"llm": "100000000/s", "speech": "100000000/s"},'
    ' "user_llm_tokens": "100000000000/s", "zone_llm_tokens": "100000000000/s",'
    ' "burst_requests": 1000000000, "repeat_prompts": 1000000000}'
)


def secured_router_env(keys_dir: Path, region: str) -> tuple[dict[str, str], dict[str, str]]:
    """(env, headers): a router with auth and limits on, and a token's header for it."""
    from megacity.testing import AuthKit

    kit = AuthKit(keys_dir, region)
    env = {**kit.env(reload_interval_s=10.0), "MEGACITY_LIMITS": _NO_REFUSALS}
    return env, kit.headers("bench-user", ttl_s=3600)

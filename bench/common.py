"""What the benchmarks share: a closed-loop load runner, percentiles and readable tables."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """Print right-aligned columns under a title."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))

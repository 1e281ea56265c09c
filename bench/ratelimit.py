"""Rate limiter benchmark: decisions/s and latency, in memory against Redis (one Lua call).

Each decision charges 1 or 3 buckets (user, zone, engine) for one of 1,000 users, from
1 and 16 concurrent callers. Redis at 127.0.0.1:6379 (or MEGACITY_TEST_REDIS_URL), keys
under a prefix of the run's own, deleted afterwards. Usage: python bench/ratelimit.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import closed_loop, pct, table  # noqa: E402

from megacity.jobs.testing import REDIS_URL, unique_prefix  # noqa: E402
from megacity.safety.ratelimit import (  # noqa: E402
    Bucket,
    MemoryRateLimiter,
    Rate,
    RateLimiter,
    RedisRateLimiter,
)

USERS = 1000
PER_USER = Rate(600, 60)
ZONE = Bucket("zone:univprep:requests", Rate(1e9, 60))
ENGINE = Bucket("engine:llm:requests", Rate(1e9, 60))


async def measure(limiter: RateLimiter, buckets: int, concurrency: int, total: int) -> list[str]:
    """One table row: decisions/s, share allowed, p50/p99 latency (ms)."""
    users = itertools.cycle(range(USERS))
    latencies: list[float] = []
    allowed = 0

    async def one() -> None:
        nonlocal allowed
        chosen = [Bucket(f"user:{next(users)}:requests", PER_USER), ZONE, ENGINE][:buckets]
        started = time.perf_counter()
        decision = await limiter.take(chosen)
        latencies.append(time.perf_counter() - started)
        allowed += decision.allowed

    seconds = await closed_loop(one, concurrency, total, warmup=min(200, total // 10))
    measured = latencies[-total:]
    return [
        str(buckets),
        str(concurrency),
        f"{total / seconds:,.0f}",
        f"{allowed / len(latencies):.0%}",
        f"{pct(measured, 0.5) * 1e3:.3f}",
        f"{pct(measured, 0.99) * 1e3:.3f}",
    ]


async def main(quick: bool) -> None:
    prefix = unique_prefix()
    redis = RedisRateLimiter.from_url(REDIS_URL, prefix=prefix)
    rows: list[list[str]] = []
    try:
        for name, total in (("memory", 200_000), ("redis", 20_000)):
            total //= 10 if quick else 1
            for buckets, concurrency in ((1, 1), (3, 1), (1, 16), (3, 16)):
                limiter: RateLimiter = MemoryRateLimiter() if name == "memory" else redis
                rows.append([name, *await measure(limiter, buckets, concurrency, total)])
    finally:
        names = [k async for k in redis.redis.scan_iter(match=redis.keys.pattern(), count=500)]
        if names:
            await redis.redis.delete(*names)
        await redis.close()
    header = ["limiter", "buckets", "callers", "decisions/s", "allowed", "p50 ms", "p99 ms"]
    table("Rate limiter: take() of 1 or 3 buckets", header, rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the decisions")
    asyncio.run(main(parser.parse_args().quick))

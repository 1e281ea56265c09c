"""Gateway benchmark: the router vs the stand-in vLLM called directly, in the same run.

Prints req/s, p50/p99 and the latency the router adds, for concurrency 1, 16 and 64,
non-streaming and streaming (time to first token, cost per relayed chunk), plus router
start-up time and the routing decision time. Usage: python bench/gateway.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import uvloop
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import closed_loop, pct, secured_router_env, table  # noqa: E402

from megacity.config.topology import load_topology  # noqa: E402
from megacity.routing import Balancer, ModelRegistry, ModelSelector, PromptInfo  # noqa: E402
from megacity.routing.context import RequestContext  # noqa: E402
from megacity.testing import RouterProcess, StandinProcess  # noqa: E402

BODY = {"model": "bench-7b", "messages": [{"role": "user", "content": "What is a noun?"}]}
HEADERS = {"Content-Type": "application/json", "X-Zone": "bench"}
AUTH_OFF = {"MEGACITY_AUTH_ENABLED": "false"}  # start-up time only: no request is sent


def _topology(url: str) -> dict[str, object]:
    return {
        "regions": [{"name": "local"}],
        "nodes": [
            {
                "name": "standin",
                "engine": "llm",
                "url": url,
                "models": ["bench-7b"],
                "region": "local",
                "max_concurrency": 1024,
            }
        ],
        "models": [{"name": "bench-7b", "tier": "7b"}],
        "zones": {
            "bench": {"engines": {"llm": "bench-7b"}, "tiers": {"models": {"7b": "bench-7b"}}}
        },
    }


@dataclass
class Run:
    rps: float
    p50: float  # ms
    p99: float  # ms
    ttft50: float = 0.0  # ms, streams only


async def _load(
    url: str, concurrency: int, total: int, stream: bool, headers: dict[str, str]
) -> Run:
    body = orjson.dumps({**BODY, "stream": stream})
    latencies: list[float] = []
    ttfts: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {await resp.text()}")
                if stream:
                    first = True
                    async for _ in resp.content.iter_any():
                        if first:
                            ttfts.append((time.perf_counter() - t0) * 1000)
                            first = False
                else:
                    await resp.read()
            latencies.append((time.perf_counter() - t0) * 1000)

        warmup = min(total // 10, 200)  # connections, caches
        elapsed = await closed_loop(one, concurrency, total, warmup)
    latencies, ttfts = latencies[warmup:], ttfts[warmup:]
    return Run(
        total / elapsed,
        statistics.median(latencies),
        pct(latencies, 0.99),
        statistics.median(ttfts) if ttfts else 0.0,
    )


def _startup_seconds(config: str, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        router = RouterProcess(config, env={"MEGACITY_REQUEST_LOG": "false", **AUTH_OFF})
        t0 = time.perf_counter()
        router.start(timeout_s=30)
        times.append(time.perf_counter() - t0)
        router.stop()
    return statistics.median(times)


def _decision_us(iterations: int = 20000) -> tuple[float, float]:
    """Routing decision in-process: auto model selection + node pick, µs per decision."""
    topo = load_topology(ROOT / "examples" / "topology.yaml")
    registry = ModelRegistry(topo)
    selector = ModelSelector(topo, registry)
    balancer = Balancer(topo)
    ctx = RequestContext("bench", zone="univprep", locale="ko", region="kr-seoul")
    prompt = PromptInfo("이 논술 답안의 논리를 첨삭해 주세요. " * 20)
    t0 = time.perf_counter()
    for _ in range(iterations):
        decision = selector.select("auto", ctx, prompt)
        balancer.pick(decision.model.name, ctx.region)
    auto = (time.perf_counter() - t0) / iterations * 1e6
    t0 = time.perf_counter()
    for _ in range(iterations):
        decision = selector.select("qwen2.5-14b", ctx, prompt)
        balancer.pick(decision.model.name, ctx.region)
    named = (time.perf_counter() - t0) / iterations * 1e6
    return auto, named


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    uvloop.install()
    with tempfile.TemporaryDirectory() as tmp:
        standin = StandinProcess("standin").start()
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(_topology(standin.url)))
        # Auth and limits on, as in production: their cost is part of the router's.
        env, auth = secured_router_env(Path(tmp) / "keys", "local")
        router = RouterProcess(str(config), env={**env, "MEGACITY_HEALTH_INTERVAL_S": "1"})
        router.start()
        headers = {**HEADERS, **auth}
        try:
            _gateway(standin, router, scale, headers)
            _chunks(standin, router, scale, headers)
        finally:
            router.stop()
            standin.stop()
        startup = _startup_seconds(str(config))
    auto_us, named_us = _decision_us()
    table(
        "Start-up and routing decision (target: start-up ≤ 2 s, decision ≤ 200 µs)",
        ["what", "value"],
        [
            ["router start-up to /healthz (median of 3)", f"{startup:.2f} s"],
            ["decision, model=auto (classify + zone + locale + pick)", f"{auto_us:.1f} µs"],
            ["decision, named model (+ pick)", f"{named_us:.1f} µs"],
        ],
    )
    print(
        "\nLiteLLM proxy on this machine class (from the issue): +18 ms at c=1, ~57 req/s at c=16,"
    )
    print("+~20 ms TTFT, 1.2 ms per streamed chunk, 13 s start-up.")


def _gateway(
    standin: StandinProcess, router: RouterProcess, scale: float, headers: dict[str, str]
) -> None:
    rows = []
    for stream in (False, True):
        for concurrency, total in ((1, 2000), (16, 8000), (64, 8000)):
            n = max(200, int(total * scale))
            direct = asyncio.run(
                _load(f"{standin.url}/v1/chat/completions", concurrency, n, stream, HEADERS)
            )
            routed = asyncio.run(
                _load(f"{router.url}/v1/chat/completions", concurrency, n, stream, headers)
            )
            added = routed.p50 - direct.p50
            row = [
                "stream" if stream else "json",
                str(concurrency),
                f"{direct.rps:,.0f}",
                f"{routed.rps:,.0f}",
                f"{direct.p50:.2f}/{direct.p99:.2f}",
                f"{routed.p50:.2f}/{routed.p99:.2f}",
                f"{added:+.2f}",
            ]
            if stream:
                row.append(f"{routed.ttft50 - direct.ttft50:+.2f}")
            else:
                row.append("")
            rows.append(row)
    table(
        "Gateway: stand-in direct vs through the router (one router process; 8 chunks per stream)"
        "\n  targets: added p50 ≤ 1.5 ms at c=1, ≥ 1,000 req/s at c=16, TTFT added ≤ 2 ms",
        [
            "mode",
            "conc",
            "direct req/s",
            "router req/s",
            "direct p50/p99 ms",
            "router p50/p99 ms",
            "added p50 ms",
            "added TTFT ms",
        ],
        rows,
    )


def _chunks(
    standin: StandinProcess, router: RouterProcess, scale: float, headers: dict[str, str]
) -> None:
    chunks, n = 200, max(20, int(100 * scale))
    standin.configure(chunks=chunks, chunk_ms=1)
    try:
        direct = asyncio.run(_load(f"{standin.url}/v1/chat/completions", 1, n, True, HEADERS))
        routed = asyncio.run(_load(f"{router.url}/v1/chat/completions", 1, n, True, headers))
    finally:
        standin.configure(chunks=8, chunk_ms=0)
    per_chunk = (routed.p50 - direct.p50) / (chunks + 1)
    table(
        f"Streaming relay: {chunks} chunks, 1 ms apart, concurrency 1 (target ≤ 0.1 ms per chunk)",
        ["what", "direct", "router", "added"],
        [
            [
                "time to first token p50 ms",
                f"{direct.ttft50:.2f}",
                f"{routed.ttft50:.2f}",
                f"{routed.ttft50 - direct.ttft50:+.2f}",
            ],
            [
                "whole stream p50 ms",
                f"{direct.p50:.1f}",
                f"{routed.p50:.1f}",
                f"{routed.p50 - direct.p50:+.2f}",
            ],
            ["per relayed chunk ms", "", "", f"{per_chunk:+.4f}"],
        ],
    )


if __name__ == "__main__":
    main()

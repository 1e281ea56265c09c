"""Dashboard benchmark: the data endpoint with 50 nodes and an hour of history, and what the
rolling aggregates cost the request path.

Prints the time of `GET /dashboard/data` (5 min, 1 h, 24 h windows) through the app's whole
ASGI stack (auth guard, middleware, JSON), with this replica's figures in memory and, when
Redis answers, with two replicas' figures merged from Redis; `GET /healthz` through the same
stack is the anchor. Then the request path: `RollingStats.record` per call, and a request
through the access middleware with and without the aggregates.
Usage: python bench/dashboard.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import pct, table  # noqa: E402

from megacity.api.app import create_app  # noqa: E402
from megacity.api.middleware import RequestMiddleware  # noqa: E402
from megacity.config.settings import Settings  # noqa: E402
from megacity.config.topology import Topology  # noqa: E402
from megacity.observability.metrics import Metrics  # noqa: E402
from megacity.observability.replicas import BoardKeys, RedisBoard  # noqa: E402
from megacity.observability.rolling import RollingStats  # noqa: E402

NODES = 50
ZONES = ("univprep", "skillprep", "ktube", "mpcstudy", "dreamseed", "edu")
RATE = 20.0  # requests per second of history, spread over the keys
TARGET_MS = 20.0


def topology() -> dict[str, Any]:
    """50 nodes over two regions: 40 LLM nodes (10 models, 4 nodes each), 5 speech, 5 pose."""
    nodes: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    tiers = ("7b", "14b", "34b", "70b")
    for m in range(10):
        models.append({"name": f"llm-{m}", "tier": tiers[m % 4]})
        for k in range(4):
            nodes.append(_node(f"gpu-{m}-{k}", "llm", [f"llm-{m}"], k))
    for engine in ("speech", "pose"):
        models.append({"name": f"{engine}-model", "engine": engine})
        nodes += [_node(f"{engine}-{k}", engine, [f"{engine}-model"], k) for k in range(5)]
    zones = {
        z: {
            "engines": {"llm": f"llm-{i}", "speech": "speech-model", "pose": "pose-model"},
            "tiers": {"models": {tiers[j]: f"llm-{(i + j) % 10}" for j in range(4)}},
        }
        for i, z in enumerate(ZONES)
    }
    return {
        "regions": [{"name": "kr"}, {"name": "jp"}],
        "nodes": nodes,
        "models": models,
        "zones": zones,
        "default_zone": ZONES[0],
    }


def _node(name: str, engine: str, models: list[str], k: int) -> dict[str, Any]:
    return {
        "name": name,
        "engine": engine,
        "url": f"http://127.0.0.1:{9 + k}",  # nothing listens: the probes fail, as they may
        "models": models,
        "region": "kr" if k % 2 == 0 else "jp",
    }


GROUPS = [f"school-{i:02d}" for i in range(30)]  # user groups (token `group` claims)


def fill(stats: RollingStats, clock: list[float], seconds: float, seed: int) -> int:
    """`seconds` of history at RATE requests/s over every (engine, model, zone, node)."""
    rng = random.Random(seed)
    topo = topology()
    keys = [(n["engine"], n["models"][0], z, n["name"]) for n in topo["nodes"] for z in ZONES[:3]]
    end = clock[0]
    clock[0] = end - seconds
    count = 0
    while clock[0] < end:
        engine, model, zone, node = rng.choice(keys)
        latency = rng.lognormvariate(-3.0 if engine == "llm" else -1.5, 0.8)
        status = 502 if rng.random() < 0.01 else (429 if rng.random() < 0.02 else 200)
        ttft = latency / 8 if engine == "llm" and rng.random() < 0.5 else None
        group = GROUPS[rng.randrange(len(GROUPS))]
        stats.record(engine, model, node, zone, status, latency, ttft, group, 40)
        if rng.random() < 0.01:
            stats.event(("failover", model, node))
        clock[0] += rng.expovariate(RATE)
        count += 1
    clock[0] = end
    return count


async def timed(client: httpx.AsyncClient, path: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        resp = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200, resp.text[:300]
    return times


async def endpoint(rounds: int, redis_url: str | None) -> list[list[str]]:
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        topo = Topology.model_validate(topology())
        settings = Settings(
            topology=topo,
            data_dir=Path(tmp),
            auth_enabled=False,
            request_log=False,
            redis_url=redis_url,
            dashboard_key_prefix=f"megacity:bench:{os.getpid()}:dash",
        )
        app = create_app(settings)
        services = app.state.services
        clock = [time.time()]
        history = RollingStats(lambda: clock[0])  # an hour in the past, then now
        requests = fill(history, clock, 3600, seed=1)
        services.board.rolling = history
        other: RedisBoard | None = None
        if redis_url:  # a second replica's hour, published to the same Redis
            second = RollingStats(lambda: clock[0])
            fill(second, clock, 3600, seed=2)
            other = RedisBoard.from_url(
                redis_url, second, list, keys=BoardKeys(settings.dashboard_key_prefix)
            )
            await other.flush()
        clock[0] = time.time()
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
        ):
            await timed(client, "/dashboard/data?window=1h", 3)  # warm: imports, first queries
            anchor = await timed(client, "/healthz", rounds)
            where = "2 replicas via Redis" if redis_url else "1 replica, in memory"
            rows.append(["GET /healthz (anchor)", where, *_ms(anchor), ""])
            for window in ("5m", "1h", "24h"):
                times = await timed(client, f"/dashboard/data?window={window}", rounds)
                ok = "yes" if statistics.median(times) < TARGET_MS else "NO"
                rows.append([f"GET /dashboard/data?window={window}", where, *_ms(times), ok])
            size = len((await client.get("/dashboard/data?window=1h")).content)
            note = f"  (history: {requests:,} requests/replica, 1 h answer {size / 1024:.0f} KiB)"
            rows.append([note, "", "", "", "", ""])
            if other is not None:
                await other.redis.delete(
                    *[k async for k in other.redis.scan_iter(match=other.keys.pattern())]
                )
                await other.redis.aclose()
    return rows


def _ms(times: list[float]) -> list[str]:
    return [f"{min(times):.2f}", f"{statistics.median(times):.2f}", f"{pct(times, 0.99):.2f}"]


async def hot_path(rounds: int) -> list[list[str]]:
    """What the aggregates add per request: one record, and one request through the middleware."""
    stats = RollingStats()
    keys = [("llm", f"m{i % 10}", f"z{i % 5}", f"n{i % 50}") for i in range(200)]
    n = rounds * 2000
    started = time.perf_counter()
    for i in range(n):
        e, m, z, node = keys[i % 200]
        stats.record(e, m, node, z, 200, 0.012, 0.003 if i % 2 else None, GROUPS[i % 7], 40)
    record_us = (time.perf_counter() - started) / n * 1e6

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["state"]["route"] = ("llm", "m1", "n1", "z1")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    async def run(middleware: RequestMiddleware) -> float:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(_: Any) -> None:
            return None

        scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
        count = rounds * 2000
        begun = time.perf_counter()
        for _ in range(count):
            await middleware({**scope, "state": {}}, receive, send)
        return (time.perf_counter() - begun) / count * 1e6

    metrics = Metrics()
    plain = RequestMiddleware(app, metrics, request_log=False)
    rolling = RequestMiddleware(app, metrics, request_log=False, rolling=RollingStats())
    base, with_rolling = [], []
    for _ in range(5):  # interleaved: the machine's load hits both alike
        base.append(await run(plain))
        with_rolling.append(await run(rolling))
    b, w = statistics.median(base), statistics.median(with_rolling)
    return [
        ["RollingStats.record, per call", f"{record_us:.2f} µs", ""],
        ["access middleware per request, without the aggregates", f"{b:.2f} µs", ""],
        ["access middleware per request, with the aggregates", f"{w:.2f} µs", f"+{w - b:.2f} µs"],
    ]


def redis_url() -> str | None:
    import redis

    url = os.environ.get("MEGACITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
        return url
    except redis.RedisError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 10 if args.quick else 40
    rows = asyncio.run(endpoint(rounds, None))
    url = redis_url()
    if url:
        rows += asyncio.run(endpoint(rounds, url))
    table(
        f"Dashboard data endpoint: {NODES} nodes, 1 h of history at {RATE:g} req/s "
        f"(target: p50 < {TARGET_MS:g} ms)",
        ["request", "figures from", "min ms", "p50 ms", "p99 ms", "p50 < 20 ms"],
        rows,
    )
    if not url:
        print("  (Redis not reachable: the shared-figures rows were skipped)")
    table(
        "Request path: the rolling aggregates (target: no change in bench/gateway.py figures)",
        ["what", "cost", "added"],
        asyncio.run(hot_path(5 if args.quick else 20)),
    )


if __name__ == "__main__":
    main()

"""Gateway benchmark: the router beside nginx and vllm-router, in front of the same stand-in.

One run, one upstream (the stand-in vLLM, no delay), one load generator (wrk, closed
loop, one thread) for every proxy:

- nginx (Debian package): a plain reverse proxy, the floor;
- vllm-router (PyPI, in the bench's own environment `.bench/anchors`, never a project
  dependency): the compiled router that does the same job;
- megacity with auth on and limits off, in a zone with the default safety (PII masking,
  firewall, moderation), then in a zone with safety off; with `--workers 2`; and served by
  granian instead of uvicorn.

Prints added latency at c=1, p99 at c=16, req/s at c=16 and c=64, added time to first
token (streaming, c=1), start-up, idle RSS and CPU time per request at c=16, then the p99/p50 ratio at c=16 beside
vllm-router's (the stall check), the streaming relay cost and the routing decision.
`make bench` installs the anchors (`make bench-tools`). Usage: python bench/gateway.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import uvloop
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import secured_router_env, table  # noqa: E402

from megacity.config.topology import load_topology  # noqa: E402
from megacity.routing import Balancer, ModelRegistry, ModelSelector, PromptInfo  # noqa: E402
from megacity.routing.context import RequestContext  # noqa: E402
from megacity.routing.conversation import route_hint  # noqa: E402
from megacity.testing import StandinProcess, end_process, free_port  # noqa: E402

ANCHORS = ROOT / ".bench" / "anchors" / "bin"
BODY = {"model": "bench-7b", "messages": [{"role": "user", "content": "What is a noun?"}]}
PATH = "/v1/chat/completions"
ROUTER_ENV = {
    "MEGACITY_LIMITS": '{"enabled": false}',
    "MEGACITY_REQUEST_LOG": "false",
    "MEGACITY_HEALTH_INTERVAL_S": "1",
}


def _topology(url: str) -> dict[str, object]:
    bench = {"engines": {"llm": "bench-7b"}, "tiers": {"models": {"7b": "bench-7b"}}}
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
            "bench": bench,
            "bench-unsafe": {
                **bench,
                "safety": {"pii": "allow", "firewall": "off", "moderation": "off"},
            },
        },
        "default_zone": "bench",
    }


# --- measuring -----------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50: float  # ms
    p99: float  # ms
    requests: int = 0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, headers: dict[str, str], conc: int, seconds: float, tmp: Path) -> Load:
    """One closed-loop wrk run (one thread) posting BODY; its req/s and latency percentiles."""
    script = tmp / "post.lua"
    lines = ["wrk.method = 'POST'", f"wrk.body = '{orjson.dumps(BODY).decode()}'"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conc}", f"-d{seconds:g}s", "--latency", "-s", str(script), url + PATH],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"{url}: non-2xx answers under load:\n{out}")
    pcts = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Load(rps, _ms(pcts["50"]), _ms(pcts["99"]), total)


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


async def _ttft(url: str, headers: dict[str, str], n: int) -> float:
    """Median time to the first streamed bytes, one request at a time (ms)."""
    body = orjson.dumps({**BODY, "stream": True})
    times: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(n + 20):
            t0 = time.perf_counter()
            async with session.post(url + PATH, data=body, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}: {await resp.text()}")
                first = None
                async for _ in resp.content.iter_any():
                    first = first or time.perf_counter()
            if i >= 20 and first is not None:  # after a warm-up
                times.append((first - t0) * 1000)
    return statistics.median(times)


def _tree(pid: int) -> list[int]:
    """A process and its descendants (nginx workers, router workers)."""
    found, pids = [], [pid]
    while pids:
        p = pids.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _rss_mib(pid: int) -> float:
    """Resident memory of a process and its children."""
    total = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        except (OSError, AttributeError):
            continue
    return total / 1024


_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process and its children have used so far."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total * _TICK_S


# --- the proxies -----------------------------------------------------------------------


@dataclass
class Proxy:
    name: str
    url: str
    headers: dict[str, str]
    proc: subprocess.Popen[bytes]
    startup_s: float

    def stop(self) -> None:
        end_process(self.proc)


def _spawn(
    name: str, cmd: list[str], port: int, health: str, headers: dict[str, str], env: dict[str, str]
) -> Proxy:
    """Start a proxy and time it to its first healthy answer."""
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = t0 + 60
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            with urllib.request.urlopen(url + health, timeout=1) as resp:
                if resp.status < 500:
                    break
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                break
        except OSError:
            pass
        time.sleep(0.01)
    else:
        proc.kill()
        raise TimeoutError(f"{name} did not start")
    return Proxy(name, url, headers, proc, time.perf_counter() - t0)


def _nginx(upstream: str, tmp: Path) -> Proxy:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream standin {{ server {upstream.removeprefix("http://")}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://standin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""
    )
    cmd = [shutil.which("nginx") or "nginx", "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"]
    return _spawn("nginx", cmd, port, "/health", {}, {})


def _vllm_router(upstream: str) -> Proxy:
    port = free_port()
    cmd = [
        str(ANCHORS / "vllm-router"),
        *("--worker-urls", upstream, "--port", str(port), "--policy", "round_robin"),
        *("--log-level", "warning"),
    ]
    return _spawn("vllm-router", cmd, port, "/health", {}, {})


def _megacity(
    name: str, config: Path, env: dict[str, str], headers: dict[str, str], *extra: str
) -> Proxy:
    port = free_port()
    cmd = [sys.executable, "-m", "megacity", "serve", "--config", str(config), "--port", str(port)]
    return _spawn(name, [*cmd, *extra], port, "/healthz", headers, env)


def _granian(config: Path, env: dict[str, str], headers: dict[str, str]) -> Proxy:
    """The same app under granian (from the anchors' environment, the project's on its path)."""
    port = free_port()
    paths = [str(ROOT), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    cmd = [
        str(ANCHORS / "granian"),
        *("--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(port)),
        *("--loop", "uvloop", "--no-ws", "--log-level", "warning"),
        "megacity.api.app:create_app_from_env",
    ]
    genv = {**env, "MEGACITY_CONFIG": str(config), "PYTHONPATH": os.pathsep.join(paths)}
    return _spawn("megacity (granian)", cmd, port, "/healthz", headers, genv)


# --- the run ---------------------------------------------------------------------------

RUNS = ("nginx", "vllm-router", "megacity", "unsafe", "workers", "granian")


@dataclass
class Row:
    name: str
    added_p50: float
    c16: Load
    c64: Load
    added_ttft: float
    startup_s: float
    rss_mib: float
    cpu_us: float = 0.0  # the proxy's CPU time per request at c=16 (load-independent)


def _measure(proxy: Proxy, base: Row, seconds: float, tmp: Path, zone: str) -> Row:
    headers = {"Content-Type": "application/json", "X-Zone": zone, **proxy.headers}
    time.sleep(1.0)
    rss = _rss_mib(proxy.proc.pid)
    wrk(proxy.url, headers, 16, 1, tmp)  # warm-up: connections, caches
    c1 = wrk(proxy.url, headers, 1, seconds, tmp)
    cpu0 = _cpu_s(proxy.proc.pid)
    c16 = wrk(proxy.url, headers, 16, seconds, tmp)
    cpu_us = (_cpu_s(proxy.proc.pid) - cpu0) / max(1, c16.requests) * 1e6
    c64 = wrk(proxy.url, headers, 64, seconds, tmp)
    ttft = asyncio.run(_ttft(proxy.url, headers, 200 if seconds >= 4 else 60))
    return Row(
        proxy.name,
        c1.p50 - base.added_p50,
        c16,
        c64,
        ttft - base.added_ttft,
        proxy.startup_s,
        rss,
        cpu_us,
    )


def _anchors_missing() -> list[str]:
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if not (ANCHORS / "vllm-router").exists():
        missing.append(".bench/anchors (vllm-router, granian)")
    return missing


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of {','.join(RUNS)} (the anchors' rows then may be missing)",
    )
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    if only - set(RUNS):
        sys.exit(f"--only takes {', '.join(RUNS)}")
    missing = _anchors_missing()
    if missing:
        sys.exit(f"bench/gateway.py needs {', '.join(missing)}: run `make bench-tools` first")
    seconds = 3.0 if args.quick else 8.0
    uvloop.install()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        standin = StandinProcess("standin").start()
        try:
            config = tmp / "bench.yaml"
            config.write_text(yaml.safe_dump(_topology(standin.url)))
            env, auth = secured_router_env(tmp / "keys", "local")
            env = {**env, **ROUTER_ENV, "MEGACITY_DATA_DIR": str(tmp / "var")}
            base_headers = {"Content-Type": "application/json"}
            c1 = wrk(standin.url, base_headers, 1, seconds, tmp)
            ttft = asyncio.run(_ttft(standin.url, base_headers, 200 if seconds >= 4 else 60))
            direct = Row("stand-in direct", c1.p50, c1, c1, ttft, 0.0, 0.0)
            runs: dict[str, tuple[Callable[[], Proxy], str, str]] = {
                "nginx": (lambda: _nginx(standin.url, tmp), "bench", ""),
                "vllm-router": (lambda: _vllm_router(standin.url), "bench", ""),
                "megacity": (lambda: _megacity("megacity", config, env, auth), "bench", ""),
                "unsafe": (
                    lambda: _megacity("megacity", config, env, auth),
                    "bench-unsafe",
                    ", zone safety off",
                ),
                "workers": (
                    lambda: _megacity("megacity", config, env, auth, "--workers", "2"),
                    "bench",
                    ", 2 workers",
                ),
                "granian": (lambda: _granian(config, env, auth), "bench", ""),
            }
            for key, (start, zone, label) in runs.items():
                if only and key not in only:
                    continue
                proxy = start()
                try:
                    row = _measure(proxy, direct, seconds, tmp, zone)
                    row.name += label
                    rows.append(row)
                finally:
                    proxy.stop()
            if not only:
                _chunks(standin, config, env, auth, seconds)
        finally:
            standin.stop()
    _report(direct, rows)
    if not only:
        _decision_table()


def _report(direct: Row, rows: list[Row]) -> None:
    table(
        "Gateways in front of the same stand-in (wrk closed loop, one thread; upstream delay 0;"
        "\n  megacity: auth on, limits off)",
        [
            "",
            "added p50 c=1",
            "p99 c=16",
            "req/s c=16",
            "req/s c=64",
            "added TTFT c=1",
            "start-up",
            "RSS idle",
            "CPU/req c=16",
        ],
        [
            [
                "stand-in direct",
                f"({direct.added_p50:.2f} ms)",
                f"{direct.c16.p99:.1f} ms",
                f"{direct.c16.rps:,.0f}",
                "",
                f"({direct.added_ttft:.2f} ms)",
                "",
                "",
                "",
            ]
        ]
        + [
            [
                r.name,
                f"{r.added_p50:.2f} ms",
                f"{r.c16.p99:.1f} ms",
                f"{r.c16.rps:,.0f}",
                f"{r.c64.rps:,.0f}",
                f"{r.added_ttft:.2f} ms",
                f"{r.startup_s:.2f} s",
                f"{r.rss_mib:.0f} MiB",
                f"{r.cpu_us:.0f} µs",
            ]
            for r in rows
        ],
    )
    by = {r.name: r for r in rows}
    if not {"vllm-router", "nginx", "megacity", "megacity, zone safety off"} <= set(by):
        return  # a subset (--only): no comparison
    anchor, ours = by["vllm-router"], by["megacity"]
    unsafe = by["megacity, zone safety off"]
    print(
        f"\nstalls: p99/p50 at c=16 megacity {ours.c16.p99 / ours.c16.p50:.1f}"
        f" (vllm-router {anchor.c16.p99 / anchor.c16.p50:.1f}, nginx"
        f" {by['nginx'].c16.p99 / by['nginx'].c16.p50:.1f})"
    )
    print(
        "targets: added p50 ≤ 0.3 ms → "
        f"{ours.added_p50:.2f}; p99 c=16 ≤ 3 × vllm-router → {ours.c16.p99 / anchor.c16.p99:.1f}×;"
        f" req/s c=16 ≥ 3,000 (safety on) / 4,000 (off) → {ours.c16.rps:,.0f} / {unsafe.c16.rps:,.0f};"
        f" added TTFT ≤ vllm-router's → {ours.added_ttft:.2f} vs {anchor.added_ttft:.2f} ms"
    )


def _chunks(
    standin: StandinProcess, config: Path, env: dict[str, str], auth: dict[str, str], seconds: float
) -> None:
    """The cost of relaying a long stream: 200 chunks 1 ms apart, through one router."""
    chunks, n = 200, 20 if seconds < 4 else 60
    router = _megacity("megacity", config, env, auth)
    standin.configure(chunks=chunks, chunk_ms=1)
    headers = {"Content-Type": "application/json", "X-Zone": "bench"}
    try:
        direct = asyncio.run(_stream_total(standin.url, headers, n))
        routed = asyncio.run(_stream_total(router.url, {**headers, **auth}, n))
    finally:
        standin.configure(chunks=8, chunk_ms=0)
        router.stop()
    table(
        f"Streaming relay: {chunks} chunks 1 ms apart, concurrency 1 (target ≤ 0.1 ms per chunk)",
        ["what", "direct", "router", "added"],
        [
            ["whole stream p50 ms", f"{direct:.1f}", f"{routed:.1f}", f"{routed - direct:+.2f}"],
            ["per relayed chunk ms", "", "", f"{(routed - direct) / (chunks + 1):+.4f}"],
        ],
    )


async def _stream_total(url: str, headers: dict[str, str], n: int) -> float:
    body = orjson.dumps({**BODY, "stream": True})
    times = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            t0 = time.perf_counter()
            async with session.post(url + PATH, data=body, headers=headers) as resp:
                await resp.read()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times[n // 5 :])


def _decision_table(iterations: int = 20000) -> None:
    """Routing decision in-process: auto model selection + node pick, µs per decision."""
    topo = load_topology(ROOT / "examples" / "topology.yaml")
    selector = ModelSelector(topo, ModelRegistry(topo))
    balancer = Balancer(topo)
    ctx = RequestContext("bench", zone="univprep", locale="ko", region="kr-seoul")
    prompt = PromptInfo("이 논술 답안의 논리를 첨삭해 주세요. " * 20)
    body = {"model": "qwen2.5-14b", "messages": [{"role": "user", "content": prompt.text}]}
    results = []
    for model, cache_aware in (("auto", False), ("qwen2.5-14b", False), ("qwen2.5-14b", True)):
        t0 = time.perf_counter()
        for _ in range(iterations):
            decision = selector.select(model, ctx, prompt)
            hint = None
            if cache_aware:  # conversation key and token estimate, then the ring
                hint = route_hint(body, decision.model.name, "univprep", None, balancer.tokens)
            balancer.pick(decision.model.name, ctx.region, hint=hint)
        results.append((time.perf_counter() - t0) / iterations * 1e6)
    table(
        "Routing decision (target ≤ 200 µs)",
        ["what", "value"],
        [
            ["model=auto (classify + zone + locale + pick)", f"{results[0]:.1f} µs"],
            ["named model (+ least-loaded pick)", f"{results[1]:.1f} µs"],
            ["named model (+ conversation key, tokens, cache-aware pick)", f"{results[2]:.1f} µs"],
        ],
    )


if __name__ == "__main__":
    main()

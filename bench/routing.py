"""Routing benchmark: round-robin, least-loaded and cache-aware balancing on tutoring traffic.

Four simulated engines (`megacity standin --simulate`: a prefix cache of token blocks,
time to first token = base + prefill cost × uncached prompt tokens, decode at a fixed
rate, a bounded number of running sequences), one of them twice as fast (weight 2 in
the topology). One router serves three zones, one per policy; each run starts with
empty caches and replays the same seeded workload:

- tutoring: learners holding 6–12-turn conversations under 4 strategy system prompts,
  thinking between turns (so every policy carries the same offered load);
- control: single questions with no shared prefix, same lengths and pacing.

Prints the prefix-cache hit rate, time to first token p50/p95, throughput and the share
of requests per node. Usage: python bench/routing.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import pct, table  # noqa: E402

from megacity.testing import RouterProcess, StandinProcess  # noqa: E402

MODEL = "tutor-7b"
POLICIES = ("round_robin", "least_loaded", "cache_aware")
NODES = ("gpu-a", "gpu-b", "gpu-c", "gpu-fast")
# A simulated 7B engine: ~8k prompt tokens/s prefill per sequence, 100 tokens/s decode.
SLOW = {"prefill_ms_per_token": 0.12, "decode_tokens_per_s": 100.0, "base_ttft_ms": 5.0}
FAST = {"prefill_ms_per_token": 0.06, "decode_tokens_per_s": 200.0, "base_ttft_ms": 2.5}
ENGINE = {"max_running": 8, "cache_blocks": 4096, "block_tokens": 16, "output_tokens": 32}
ANSWER_TOKENS = 32
ROUTER_ENV = {
    "MEGACITY_AUTH_ENABLED": "false",
    "MEGACITY_LIMITS": '{"enabled": false}',
    "MEGACITY_REQUEST_LOG": "false",
    "MEGACITY_HEALTH_INTERVAL_S": "0.5",
}
STRATEGIES = ("essay_feedback", "math_tutor", "code_review", "bilingual_tutor")
_WORDS = [
    "분수",
    "덧셈",
    "논술",
    "첨삭",
    "문법",
    "발음",
    "어휘",
    "예문",
    "연습",
    "설명",
    "essay",
    "feedback",
    "grammar",
    "proof",
    "step",
    "example",
    "vocabulary",
    "sentence",
    "practice",
    "explain",
    "fraction",
    "derivative",
    "loop",
    "variable",
]


def _text(rng: random.Random, tokens: int) -> str:
    """About `tokens` tokens of mixed Korean/English words (4 bytes a token)."""
    words: list[str] = []
    size = 0
    while size < tokens * 4:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word.encode()) + 1
    return " ".join(words)


def _system_prompts() -> dict[str, str]:
    rng = random.Random(7)
    return {s: f"You are the {s} tutor. " + _text(rng, 400) for s in STRATEGIES}


@dataclass
class Conversation:
    system: str | None
    turns: list[str]
    thinks: list[float]


def tutoring(n: int, seed: int, think_s: tuple[float, float]) -> list[Conversation]:
    rng = random.Random(seed)
    systems = _system_prompts()
    out = []
    for _ in range(n):
        turns = [_text(rng, rng.randint(40, 120)) for _ in range(rng.randint(6, 12))]
        thinks = [rng.uniform(*think_s) for _ in turns]
        out.append(Conversation(systems[rng.choice(STRATEGIES)], turns, thinks))
    return out


def control(like: list[Conversation], seed: int) -> list[Conversation]:
    """As many single questions as the tutoring turns, each as long as that turn's prompt."""
    rng = random.Random(seed)
    out = []
    for conv in like:
        context = 400  # the system prompt
        for turn, think in zip(conv.turns, conv.thinks, strict=True):
            context += len(turn) // 4 + 8
            out.append(Conversation(None, [_text(rng, context)], [think]))
            context += ANSWER_TOKENS + 8
    return out


@dataclass
class Result:
    ttfts: list[float] = field(default_factory=list)  # ms
    prompt: int = 0
    cached: int = 0
    nodes: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    errors: int = 0


async def _turn(
    session: aiohttp.ClientSession,
    url: str,
    zone: str,
    messages: list[dict[str, Any]],
    result: Result,
) -> str:
    body = {
        "model": MODEL,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": ANSWER_TOKENS,
    }
    headers = {"X-Zone": zone, "X-Prompt-Strategy": "none", "Content-Type": "application/json"}
    t0 = time.perf_counter()
    text = []
    first = True
    async with session.post(url, data=orjson.dumps(body), headers=headers) as resp:
        if resp.status != 200:
            result.errors += 1
            if result.errors == 1:
                print(f"  {zone}: HTTP {resp.status}: {(await resp.text())[:200]}", file=sys.stderr)
            return ""
        node = resp.headers.get("X-MegaCity-Node", "?")
        reason = resp.headers.get("X-MegaCity-Route", "?").split("reason=")[-1]
        async for line in resp.content:
            if not line.startswith(b"data: {"):
                continue
            if first:
                result.ttfts.append((time.perf_counter() - t0) * 1000)
                first = False
            event = orjson.loads(line[6:])
            for choice in event.get("choices") or ():
                text.append(choice.get("delta", {}).get("content") or "")
            usage = event.get("usage")
            if usage:
                result.prompt += usage["prompt_tokens"]
                result.cached += usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
    result.nodes[node] = result.nodes.get(node, 0) + 1
    result.reasons[reason] = result.reasons.get(reason, 0) + 1
    return "".join(text)


async def _run(url: str, zone: str, conversations: list[Conversation], learners: int) -> Result:
    result = Result()
    queue = iter(conversations)
    connector = aiohttp.TCPConnector(limit=learners)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def learner() -> None:
            for conv in queue:
                messages: list[dict[str, Any]] = []
                if conv.system:
                    messages.append({"role": "system", "content": conv.system})
                for turn, think in zip(conv.turns, conv.thinks, strict=True):
                    await asyncio.sleep(think)
                    messages.append({"role": "user", "content": turn})
                    answer = await _turn(session, url, zone, messages, result)
                    messages.append({"role": "assistant", "content": answer})

        started = time.perf_counter()
        await asyncio.gather(*(learner() for _ in range(learners)))
        result.elapsed = time.perf_counter() - started
    return result


def _topology(urls: dict[str, str], load_factor: float | None = None) -> dict[str, Any]:
    cache_aware: dict[str, Any] = {"policy": "cache_aware"}
    if load_factor is not None:
        cache_aware["load_factor"] = load_factor
    return {
        "regions": [{"name": "local"}],
        "nodes": [
            {
                "name": name,
                "engine": "llm",
                "url": url,
                "models": [MODEL],
                "region": "local",
                "weight": 2.0 if name == "gpu-fast" else 1.0,
                "max_concurrency": 256,
            }
            for name, url in urls.items()
        ],
        "models": [{"name": MODEL, "tier": "7b"}],
        "zones": {
            policy: {
                "engines": {"llm": MODEL},
                "routing": cache_aware if policy == "cache_aware" else {"policy": policy},
            }
            for policy in POLICIES
        },
        "default_zone": "cache_aware",
    }


def _row(workload: str, policy: str, r: Result) -> list[str]:
    total = sum(r.nodes.values()) or 1
    spread = "/".join(f"{100 * r.nodes.get(n, 0) / total:.0f}" for n in NODES)
    return [
        workload,
        policy,
        f"{100 * r.cached / max(1, r.prompt):.0f} %",
        f"{statistics.median(r.ttfts):.0f}",
        f"{pct(r.ttfts, 0.95):.0f}",
        f"{len(r.ttfts) / r.elapsed:.1f}",
        spread,
        str(r.errors),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer conversations")
    parser.add_argument(
        "--load-factor", type=float, help="cache_aware's load_factor (default: the topology's)"
    )
    args = parser.parse_args()
    n, learners = (24, 16) if args.quick else (64, 32)
    conversations = tutoring(n, seed=1, think_s=(0.2, 0.6))
    workloads = {"tutoring": conversations, "control": control(conversations, seed=2)}
    nodes = {name: StandinProcess(name, None, "--simulate") for name in NODES}
    results: dict[tuple[str, str], Result] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for name, node in nodes.items():
                node.start()
                node.configure(**ENGINE, **(FAST if name == "gpu-fast" else SLOW))
            config = Path(tmp) / "routing.yaml"
            config.write_text(
                yaml.safe_dump(_topology({k: v.url for k, v in nodes.items()}, args.load_factor))
            )
            router = RouterProcess(str(config), env=ROUTER_ENV)
            router.start()
            try:
                url = f"{router.url}/v1/chat/completions"
                for workload, convs in workloads.items():
                    for policy in POLICIES:
                        for node in nodes.values():
                            node.configure(reset_cache=True, reset_stats=True)
                        time.sleep(1.0)  # let the health loop see the idle engines
                        results[(workload, policy)] = asyncio.run(
                            _run(url, policy, convs, learners)
                        )
            finally:
                router.stop()
        finally:
            for node in nodes.values():
                node.stop()
    table(
        f"Routing on simulated engines ({len(NODES)} nodes, {NODES[-1]} twice as fast;"
        f" {learners} learners, {n} tutoring conversations of 6-12 turns)",
        [
            "workload",
            "policy",
            "cache hit",
            "TTFT p50 ms",
            "TTFT p95 ms",
            "req/s",
            "requests a/b/c/fast %",
            "errors",
        ],
        [_row(w, p, results[(w, p)]) for w in workloads for p in POLICIES],
    )
    _verdict(results)


def _verdict(results: dict[tuple[str, str], Result]) -> None:
    def p95(workload: str, policy: str) -> float:
        return pct(results[(workload, policy)].ttfts, 0.95)

    gain = 1 - p95("tutoring", "cache_aware") / p95("tutoring", "least_loaded")
    control_change = p95("control", "cache_aware") / p95("control", "least_loaded") - 1
    tput = [
        len(results[("tutoring", p)].ttfts) / results[("tutoring", p)].elapsed for p in POLICIES
    ]
    print(
        f"\ncache-aware vs least-loaded, tutoring: TTFT p95 {-100 * gain:+.0f} %"
        f" (target ≤ -30 %), throughput {tput[2] / tput[1]:.2f}×;"
        f" control: TTFT p95 {100 * control_change:+.0f} % (target within ±5 %)"
    )
    reasons = results[("tutoring", "cache_aware")].reasons
    print("cache-aware decisions on tutoring traffic:", dict(sorted(reasons.items())))


if __name__ == "__main__":
    main()

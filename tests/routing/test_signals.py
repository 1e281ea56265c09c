"""Engine load signals from /metrics pages of every LLM server family (captured samples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from megacity.config.topology import parse_topology
from megacity.routing.breaker import CircuitBreaker
from megacity.routing.node_state import NodeState
from megacity.routing.signals import EngineSignals, detect_server, parse_signals

PAGES = Path(__file__).parent / "metrics"


def page(name: str) -> str:
    return (PAGES / f"{name}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "vllm_v0",  # V0 engine: gpu_cache_usage_perc, swapped requests wait too
            EngineSignals(
                server="vllm",
                running=12.0,
                waiting=5.0,
                kv_cache=0.8731,
                prompt_tokens=8.802133e06,
                generation_tokens=2.419806e06,
                prefix_hit_rate=0.6412,
            ),
        ),
        (
            "vllm_v1",  # V1 engine: kv_cache_usage_perc, two engines, prefix counters
            EngineSignals(
                server="vllm",
                running=12.0,
                waiting=2.0,
                kv_cache=0.41,
                prompt_tokens=3.5e06,
                generation_tokens=700000.0,
                prefix_queries=2.0e06,
                prefix_hits=1.4e06,
            ),
        ),
        (
            "sglang",
            EngineSignals(
                server="sglang",
                running=162.0,
                waiting=2826.0,
                kv_cache=0.28,
                prompt_tokens=8.128902e06,
                generation_tokens=7.557572e06,
                prefix_hit_rate=0.007507552643049313,
            ),
        ),
        (
            "tgi",  # no KV-cache gauge: None, never a made-up zero
            EngineSignals(
                server="tgi",
                running=31.0,
                waiting=9.0,
                prompt_tokens=4866122.0,
                generation_tokens=2311984.0,
            ),
        ),
        (
            "llamacpp",
            EngineSignals(
                server="llamacpp",
                running=4.0,
                waiting=46.0,
                kv_cache=0.62,
                prompt_tokens=512907.0,
                generation_tokens=39080.0,
            ),
        ),
        (
            "dcgm_vllm",  # a GPU exporter's gauge beside the engine's: mean of the GPUs
            EngineSignals(
                server="vllm", running=20.0, waiting=3.0, kv_cache=0.93, gpu_utilization=0.9
            ),
        ),
    ],
)
def test_each_engine_family(name: str, expected: EngineSignals) -> None:
    assert parse_signals(page(name)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("vllm_v0", "vllm"),
        ("vllm_v1", "vllm"),
        ("sglang", "sglang"),
        ("tgi", "tgi"),
        ("llamacpp", "llamacpp"),
        ("dcgm_vllm", "vllm"),
    ],
)
def test_family_is_detected_from_the_names(name: str, family: str) -> None:
    assert detect_server(page(name)) == family


def test_a_fixed_family_reads_only_its_own_names() -> None:
    # A node declared `server: sglang` whose page is vLLM's gives no figures, not wrong ones.
    signals = parse_signals(page("vllm_v1"), "sglang")
    assert signals.server == "sglang"
    assert (signals.running, signals.waiting, signals.kv_cache) == (None, None, None)


def test_this_projects_engine_nodes() -> None:
    text = (
        "# TYPE megacity_engine_requests_running gauge\nmegacity_engine_requests_running 2.0\n"
        "# TYPE megacity_engine_requests_waiting gauge\nmegacity_engine_requests_waiting 7.0\n"
    )
    assert parse_signals(text) == EngineSignals(server="megacity", running=2.0, waiting=7.0)


@pytest.mark.parametrize(
    "text",
    ["", "# HELP nothing here\n", 'process_resident_memory_bytes 1.0e+09\npython_info{v="3"} 1\n'],
)
def test_pages_without_engine_names_give_nothing(text: str) -> None:
    assert parse_signals(text) == EngineSignals(server="unknown")


def test_zero_is_present_and_nan_is_absent() -> None:
    text = (
        'vllm:num_requests_waiting{model_name="m"} 0\n'
        'vllm:kv_cache_usage_perc{model_name="m"} NaN\n'
        "vllm:num_requests_running 2 1712345678000\n"  # no labels, with a timestamp
    )
    assert parse_signals(text) == EngineSignals(server="vllm", running=2.0, waiting=0.0)


def test_labels_may_hold_braces_and_spaces() -> None:
    text = 'vllm:num_requests_waiting{model_name="a } b",x="q\\"}"} 3\n'
    assert parse_signals(text).waiting == 3.0


@pytest.mark.parametrize(
    "text",
    ['vllm:num_requests_running{a="b"} lots\n', 'vllm:num_requests_running{a="b\n'],
)
def test_a_malformed_wanted_line_raises_value_error(text: str) -> None:
    # HealthMonitor catches ValueError and keeps the last figures.
    with pytest.raises(ValueError):
        parse_signals(text)


def test_kv_cache_stays_a_fraction_across_engines_and_names() -> None:
    text = (
        'vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.4\n'
        'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.4\n'
        'vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.7\n'
    )
    assert parse_signals(text).kv_cache == pytest.approx(0.7)


def _state(server: str = "auto") -> NodeState:
    topo = parse_topology(
        {
            "regions": [{"name": "r"}],
            "nodes": [
                {
                    "name": "n",
                    "engine": "llm",
                    "url": "http://10.0.0.1:8000",
                    "models": ["m"],
                    "region": "r",
                    "server": server,
                }
            ],
            "models": [{"name": "m", "tier": "7b"}],
        }
    )
    return NodeState(topo.nodes[0], CircuitBreaker())


def test_rates_come_from_two_scrapes() -> None:
    state = _state()
    first = EngineSignals("vllm", prompt_tokens=1000.0, prefix_queries=1000.0, prefix_hits=0.0)
    second = EngineSignals(
        "vllm",
        prompt_tokens=3000.0,
        generation_tokens=None,
        prefix_queries=2000.0,
        prefix_hits=750.0,
    )
    state.observe(first, now=100.0)
    assert state.prompt_tps is None and state.prefix_hit_rate is None
    state.observe(second, now=102.0)
    assert state.prompt_tps == pytest.approx(1000.0)  # tokens per second
    assert state.prefix_hit_rate == pytest.approx(0.75)  # hits per query since the last scrape
    assert state.generation_tps is None  # not exported: unknown, not zero
    # A restarted engine's counters go down: no rate, never a negative one.
    state.observe(EngineSignals("vllm", prompt_tokens=10.0), now=104.0)
    assert state.prompt_tps is None


def test_the_snapshot_names_the_detected_family() -> None:
    state = _state()
    assert state.snapshot().server == "auto" and state.snapshot().queue is None
    state.observe(parse_signals(page("sglang")), now=1.0)
    snap = state.snapshot()
    assert (snap.server, snap.queue, snap.running, snap.kv_cache) == ("sglang", 2826.0, 162.0, 0.28)
    fixed = _state("tgi")
    fixed.observe(parse_signals(page("tgi"), "tgi"), now=1.0)
    assert fixed.snapshot().server == "tgi"

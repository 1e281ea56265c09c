"""parse_engine_stats: running, waiting and KV-cache usage from a vLLM /metrics page."""

from __future__ import annotations

import pytest

from megacity.routing.health import parse_engine_stats

# Shaped like a real vLLM page: HELP/TYPE lines, counters, histograms, process metrics,
# and two model_name label sets for the request gauges (their counts add up).
VLLM_METRICS = """\
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 12345.0
python_gc_objects_collected_total{generation="1"} 678.0
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.147483648e+09
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen2.5-14B-Instruct"} 3.0
vllm:num_requests_running{engine="0",model_name="seoul-medium-kr-v1"} 4.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen2.5-14B-Instruct"} 1.0
vllm:num_requests_waiting{engine="0",model_name="seoul-medium-kr-v1"} 5.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{engine="0",model_name="seoul-medium-kr-v1"} 0.5
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="Qwen/Qwen2.5-14B-Instruct"} 5052943.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="seoul-medium-kr-v1"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="seoul-medium-kr-v1"} 42.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="seoul-medium-kr-v1"} 42.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="seoul-medium-kr-v1"} 12.5
"""


def test_realistic_page_sums_label_sets() -> None:
    assert parse_engine_stats(VLLM_METRICS) == {
        "running": 7.0,
        "waiting": 6.0,
        "kv_cache": 0.5,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.42\n',
            {"kv_cache": 0.42},
        ),  # the newer name
        (
            'vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.37\n',
            {"kv_cache": 0.37},
        ),  # the older name
        ("vllm:num_requests_running 2\n", {"running": 2.0}),  # no labels
        (
            '# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name="m"} 0\n',
            {"waiting": 0.0},  # a zero is present, not absent
        ),
    ],
)
def test_each_metric_name(text: str, expected: dict[str, float]) -> None:
    assert parse_engine_stats(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# HELP nothing here\n",
        'process_resident_memory_bytes 1.0e+09\npython_info{version="3.11"} 1.0\n',
        'sglang:num_running_reqs{model_name="m"} 3\n',  # another engine's names
        'vllm:num_requests_swapped{model_name="m"} 1\n',
    ],
)
def test_missing_metrics_are_absent(text: str) -> None:
    assert parse_engine_stats(text) == {}


def test_only_the_present_metrics_are_reported() -> None:
    stats = parse_engine_stats('vllm:num_requests_waiting{model_name="m"} 4\n')
    assert stats == {"waiting": 4.0}
    assert "running" not in stats and "kv_cache" not in stats


@pytest.mark.parametrize("text", ["garbage {{{\n", 'vllm:num_requests_running{a="b"} lots\n'])
def test_unparseable_page_raises_value_error(text: str) -> None:
    # HealthMonitor catches ValueError and keeps the last figures.
    with pytest.raises(ValueError):
        parse_engine_stats(text)


def test_kv_cache_is_not_double_counted_when_both_names_are_exported() -> None:
    text = (
        'vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.4\n'
        'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.4\n'
    )
    assert parse_engine_stats(text)["kv_cache"] == pytest.approx(0.4)


def test_kv_cache_stays_a_fraction_across_engines() -> None:
    text = (
        'vllm:num_requests_running{engine="0",model_name="m"} 2\n'
        'vllm:num_requests_running{engine="1",model_name="m"} 3\n'
        'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.6\n'
        'vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.7\n'
    )
    stats = parse_engine_stats(text)
    assert stats["running"] == 5.0  # counts do add up
    assert 0.6 <= stats["kv_cache"] <= 0.7  # mean or max, never 1.3

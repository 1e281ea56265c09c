"""Engine load signals: queue, running, KV-cache use and token counters from a node's /metrics.

Every LLM server family names the same figures differently; this module knows vLLM (both
metric generations: `gpu_cache_usage_perc` of the V0 engine, `kv_cache_usage_perc` and the
prefix-cache counters of V1), SGLang, TGI, llama.cpp and this project's own engine nodes.
The family is detected from the names a page exposes, or fixed per node
(`server: vllm|sglang|tgi|llamacpp` in the topology). The parser reads only the lines it
needs and never builds the whole page in memory: it runs in the background health loop,
every couple of seconds per node, on the same event loop as the requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Server = Literal["auto", "vllm", "sglang", "tgi", "llamacpp", "megacity", "openai"]
FAMILIES: tuple[str, ...] = ("vllm", "sglang", "tgi", "llamacpp", "megacity")
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("vllm:", "vllm"),
    ("sglang:", "sglang"),
    ("tgi_", "tgi"),
    ("llamacpp:", "llamacpp"),
    ("megacity_engine_", "megacity"),
)

# The queue-depth gauges the deployment's autoscalers (KEDA) read, named once here.
WAITING = "vllm:num_requests_waiting"
ENGINE_WAITING = "megacity_engine_requests_waiting"

# How each figure is combined over label sets (engines, models, GPUs): counts and token
# counters add up; fractions (KV-cache use, hit rates, utilisation) take the fullest.
_SUM, _MAX, _MEAN = "sum", "max", "mean"

# family → metric name → (field, combine, scale)
_NAMES: dict[str, dict[str, tuple[str, str, float]]] = {
    "vllm": {
        "vllm:num_requests_running": ("running", _SUM, 1.0),
        WAITING: ("waiting", _SUM, 1.0),
        "vllm:num_requests_swapped": ("waiting", _SUM, 1.0),  # V0: preempted to CPU, waits
        "vllm:gpu_cache_usage_perc": ("kv_cache", _MAX, 1.0),  # V0 (a fraction, despite the name)
        "vllm:kv_cache_usage_perc": ("kv_cache", _MAX, 1.0),  # V1
        "vllm:prompt_tokens_total": ("prompt_tokens", _SUM, 1.0),
        "vllm:generation_tokens_total": ("generation_tokens", _SUM, 1.0),
        "vllm:gpu_prefix_cache_hit_rate": ("prefix_hit_rate", _MAX, 1.0),  # V0 gauge
        "vllm:prefix_cache_queries_total": ("prefix_queries", _SUM, 1.0),  # V1 counters
        "vllm:prefix_cache_hits_total": ("prefix_hits", _SUM, 1.0),
        "vllm:gpu_prefix_cache_queries_total": ("prefix_queries", _SUM, 1.0),  # early V1
        "vllm:gpu_prefix_cache_hits_total": ("prefix_hits", _SUM, 1.0),
    },
    "sglang": {
        "sglang:num_running_reqs": ("running", _SUM, 1.0),
        "sglang:num_queue_reqs": ("waiting", _SUM, 1.0),
        "sglang:token_usage": ("kv_cache", _MAX, 1.0),  # share of the KV token pool in use
        "sglang:prompt_tokens_total": ("prompt_tokens", _SUM, 1.0),
        "sglang:generation_tokens_total": ("generation_tokens", _SUM, 1.0),
        "sglang:cache_hit_rate": ("prefix_hit_rate", _MAX, 1.0),
    },
    "tgi": {
        "tgi_batch_current_size": ("running", _SUM, 1.0),
        "tgi_queue_size": ("waiting", _SUM, 1.0),
        # TGI exports no KV-cache gauge; its token counters are histogram sums.
        "tgi_request_input_length_sum": ("prompt_tokens", _SUM, 1.0),
        "tgi_request_generated_tokens_sum": ("generation_tokens", _SUM, 1.0),
    },
    "llamacpp": {
        "llamacpp:requests_processing": ("running", _SUM, 1.0),
        "llamacpp:requests_deferred": ("waiting", _SUM, 1.0),
        "llamacpp:kv_cache_usage_ratio": ("kv_cache", _MAX, 1.0),  # builds that export it
        "llamacpp:prompt_tokens_total": ("prompt_tokens", _SUM, 1.0),
        "llamacpp:tokens_predicted_total": ("generation_tokens", _SUM, 1.0),
    },
    "megacity": {
        "megacity_engine_requests_running": ("running", _SUM, 1.0),
        ENGINE_WAITING: ("waiting", _SUM, 1.0),
    },
}
# Exported beside any engine by GPU exporters scraped through the same page (DCGM in
# percent, Triton as a fraction); the mean over GPUs.
_GPU: dict[str, tuple[str, str, float]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("gpu_utilization", _MEAN, 0.01),
    "nv_gpu_utilization": ("gpu_utilization", _MEAN, 1.0),
}


@dataclass(frozen=True, slots=True)
class EngineSignals:
    """One scrape of a node; None where the page did not say (never a made-up zero)."""

    server: str  # the family whose names were read ("unknown" when none matched)
    running: float | None = None  # sequences being generated
    waiting: float | None = None  # requests queued in the engine
    kv_cache: float | None = None  # KV-cache use, 0..1
    prompt_tokens: float | None = None  # counters since the engine started
    generation_tokens: float | None = None
    prefix_hit_rate: float | None = None  # 0..1, where the engine exports it as a gauge
    prefix_queries: float | None = None  # counters, where it exports those instead (vLLM V1)
    prefix_hits: float | None = None
    gpu_utilization: float | None = None  # 0..1


def detect_server(text: str) -> str:
    """The engine family whose metric names appear first on a /metrics page, or 'unknown'."""
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        for prefix, family in _PREFIXES:
            if line.startswith(prefix):
                return family
    return "unknown"


def parse_signals(text: str, server: str = "auto") -> EngineSignals:
    """The load figures of one /metrics page; ValueError when a wanted line is malformed.

    `server` "auto" detects the family from the names; a fixed family reads only its own.
    """
    family = detect_server(text) if server in ("auto", "openai") else server
    wanted = {**_NAMES.get(family, {}), **_GPU}
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        cut = _name_end(line)
        spec = wanted.get(line[:cut])
        if spec is None:
            continue
        field, combine, scale = spec
        value = _sample_value(line, cut) * scale
        if value != value:  # NaN: the engine has no reading yet
            continue
        if field not in totals:
            totals[field], counts[field] = value, 1
        elif combine == _MAX:
            totals[field] = max(totals[field], value)
        else:
            totals[field] += value
            counts[field] += 1
    if "gpu_utilization" in totals:
        totals["gpu_utilization"] /= counts["gpu_utilization"]
    return EngineSignals(server=family, **totals)


def _name_end(line: str) -> int:
    for i, ch in enumerate(line):
        if ch == "{" or ch == " " or ch == "\t":
            return i
    return len(line)


def _sample_value(line: str, cut: int) -> float:
    """The value after the name and its labels (a timestamp may follow it)."""
    rest = line[cut:]
    if rest.startswith("{"):
        end = _labels_end(rest)
        rest = rest[end + 1 :]
    parts = rest.split()
    if not parts:
        raise ValueError(f"no value on metrics line {line[:80]!r}")
    try:
        return float(parts[0])
    except ValueError:
        raise ValueError(f"bad value on metrics line {line[:80]!r}") from None


def _labels_end(rest: str) -> int:
    """Index of the '}' closing a label set, skipping quoted values (which may hold '}')."""
    quoted = False
    escaped = False
    for i, ch in enumerate(rest):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "}" and not quoted:
            return i
    raise ValueError(f"unterminated labels on metrics line {rest[:80]!r}")

"""A simulated LLM engine behind the stand-in: prefix cache, prefill and decode time, slots.

Not a model: a timing model of one, so that routing policies can be compared without
GPUs (bench/routing.py). What it models, after vLLM's automatic prefix caching:

- tokens: one per 4 bytes of the rendered prompt (`<role>content` per message);
- the prefix cache: an LRU of full token blocks (`block_tokens` each), each block named
  by a hash chained over every block before it, so a block is reused only when the
  whole prefix up to it is the same; `cache_blocks` blocks fit;
- time to first token = `base_ttft_ms` + `prefill_ms_per_token` × the prompt tokens not
  in the cache; then the answer decodes at `decode_tokens_per_s`;
- `max_running` sequences at once; the others wait in order, and /metrics shows both
  (`vllm:num_requests_running`, `vllm:num_requests_waiting`) with the KV-cache use of the
  running sequences and the prefix-cache counters, under vLLM's names.

Sequences on different slots do not slow each other down (a real engine's batch does a
little); the model is deliberately simple and the same for every policy compared.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

BYTES_PER_TOKEN = 4
_FILLER = b"lo r"  # one token of answer text


@dataclass
class SimulationConfig:
    """Timing and capacity of one simulated engine (all changeable at run time)."""

    block_tokens: int = 16
    cache_blocks: int = 4096
    base_ttft_ms: float = 4.0
    prefill_ms_per_token: float = 0.05
    decode_tokens_per_s: float = 200.0
    max_running: int = 8
    output_tokens: int = 32  # answer length when the request asks for no max_tokens


@dataclass(frozen=True, slots=True)
class Prefill:
    """What one request cost: its prompt tokens, how many came from the cache, the wait."""

    prompt_tokens: int
    cached_tokens: int
    ttft_s: float


class PrefixCache:
    """An LRU of token-block hashes; `match` counts the cached leading blocks of a prompt."""

    def __init__(self, capacity_blocks: int) -> None:
        self.capacity = capacity_blocks
        self._blocks: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def match(self, blocks: Sequence[bytes]) -> int:
        """Leading blocks already cached (touched as recently used)."""
        hits = 0
        for block in blocks:
            if block not in self._blocks:
                break
            self._blocks.move_to_end(block)
            hits += 1
        return hits

    def insert(self, blocks: Sequence[bytes]) -> None:
        """Cache these blocks (the prompt was prefilled), evicting the least recently used."""
        for block in blocks:
            if block in self._blocks:
                self._blocks.move_to_end(block)
                continue
            self._blocks[block] = None
            if len(self._blocks) > self.capacity:
                self._blocks.popitem(last=False)

    def clear(self) -> None:
        self._blocks.clear()


def render_prompt(body: dict[str, Any]) -> bytes:
    """The bytes an engine would tokenize: every message in order, or the completion prompt."""
    messages = body.get("messages")
    if isinstance(messages, list):
        parts = []
        for message in messages:
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            text = content.encode() if isinstance(content, str) else orjson.dumps(content)
            parts.append(b"<" + str(message.get("role", "")).encode() + b">" + text + b"\n")
        return b"".join(parts)
    prompt = body.get("prompt", "")
    return prompt.encode() if isinstance(prompt, str) else orjson.dumps(prompt)


def token_blocks(prompt: bytes, block_tokens: int) -> list[bytes]:
    """Hashes of the prompt's full blocks, each chained over the ones before it."""
    size = block_tokens * BYTES_PER_TOKEN
    blocks = []
    parent = b""
    for start in range(0, len(prompt) - size + 1, size):
        parent = hashlib.blake2b(parent + prompt[start : start + size], digest_size=16).digest()
        blocks.append(parent)
    return blocks


class SimulatedEngine:
    """One engine's slots, queue, prefix cache and counters."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = config or SimulationConfig()
        self.cache = PrefixCache(self.config.cache_blocks)
        self._slots = asyncio.Semaphore(self.config.max_running)
        self._slot_count = self.config.max_running
        self.running = 0
        self.waiting = 0
        self.active_blocks = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.prefix_queries_total = 0
        self.prefix_hits_total = 0

    def reconfigure(self, **changes: Any) -> None:
        """Change timings or capacity; a new slot count or cache size starts afresh."""
        for key, value in changes.items():
            if hasattr(self.config, key):
                setattr(self.config, key, type(getattr(self.config, key))(value))
        if self.config.max_running != self._slot_count:
            self._slots = asyncio.Semaphore(self.config.max_running)
            self._slot_count = self.config.max_running
        self.cache.capacity = self.config.cache_blocks

    def reset(self) -> None:
        """Empty the prefix cache and the counters (between benchmark runs)."""
        self.cache.clear()
        self.prompt_tokens_total = self.generation_tokens_total = 0
        self.prefix_queries_total = self.prefix_hits_total = 0

    def answer_tokens(self, body: dict[str, Any]) -> int:
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        wanted = self.config.output_tokens
        return min(wanted, limit) if isinstance(limit, int) and limit > 0 else wanted

    async def generate(self, body: dict[str, Any]) -> AsyncIterator[tuple[bytes, Prefill]]:
        """Wait for a slot, prefill, then yield the answer: the first token, then the rest."""
        cfg = self.config
        prompt = render_prompt(body)
        tokens = max(1, -(-len(prompt) // BYTES_PER_TOKEN))
        blocks = token_blocks(prompt, cfg.block_tokens)
        answer = self.answer_tokens(body)
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        held = len(blocks) + -(-answer // cfg.block_tokens)
        self.active_blocks += held
        try:
            cached = min(tokens, self.cache.match(blocks) * cfg.block_tokens)
            ttft = (cfg.base_ttft_ms + cfg.prefill_ms_per_token * (tokens - cached)) / 1000
            await asyncio.sleep(ttft)
            self.cache.insert(blocks)
            self.prompt_tokens_total += tokens
            self.prefix_queries_total += tokens
            self.prefix_hits_total += cached
            prefill = Prefill(tokens, cached, ttft)
            yield _FILLER, prefill
            if answer > 1:
                await asyncio.sleep((answer - 1) / cfg.decode_tokens_per_s)
                yield _FILLER * (answer - 1), prefill
            self.generation_tokens_total += answer
        finally:
            self.running -= 1
            self.active_blocks -= held
            self._slots.release()

    def metrics(self, extra_waiting: float = 0.0) -> str:
        """This engine's gauges and counters under vLLM V1's names."""
        kv = min(1.0, self.active_blocks / max(1, self.cache.capacity))
        rows = [
            ("gauge", "vllm:num_requests_running", float(self.running)),
            ("gauge", "vllm:num_requests_waiting", self.waiting + extra_waiting),
            ("gauge", "vllm:kv_cache_usage_perc", kv),
            ("counter", "vllm:prompt_tokens_total", float(self.prompt_tokens_total)),
            ("counter", "vllm:generation_tokens_total", float(self.generation_tokens_total)),
            ("counter", "vllm:prefix_cache_queries_total", float(self.prefix_queries_total)),
            ("counter", "vllm:prefix_cache_hits_total", float(self.prefix_hits_total)),
        ]
        return "".join(
            f'# TYPE {name} {kind}\n{name}{{engine="0",model_name="any"}} {value}\n'
            for kind, name, value in rows
        )

"""Tokens in flight: what the router reserves on a node per request, settled from `usage`.

A request reserves its estimated prompt tokens (to prefill) and its expected answer
tokens (to decode) on the node it is sent to. The prompt part is released when the
first byte of the answer arrives (prefill is over), the rest when the answer ends. The
engine's `usage` then corrects the estimates for the next requests of that model: the
tokenizer-free prompt estimate is scaled by the measured ratio, and the expected answer
length is the running mean of real answers (never above the request's max_tokens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

_ALPHA = 0.1  # weight of one answer in the running means
_USAGE = re.compile(rb'"usage"\s*:\s*(\{[^{}]*\})')


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


class TokenLedger:
    """Per model: the prompt-estimate correction and the mean answer length (tokens)."""

    def __init__(self, alpha: float = _ALPHA) -> None:
        self._alpha = alpha
        self._prompt_scale: dict[str, float] = {}
        self._answer: dict[str, float] = {}

    def prompt_scale(self, model: str) -> float:
        """Real prompt tokens per estimated token, as measured so far (1.0 at first)."""
        return self._prompt_scale.get(model, 1.0)

    def expected_answer(self, model: str) -> float | None:
        """The mean answer length of this model so far, None before the first answer."""
        return self._answer.get(model)

    def settle(self, model: str, estimated_prompt: int, usage: Usage) -> None:
        """Learn from one answer's usage."""
        a = self._alpha
        if estimated_prompt > 0 and usage.prompt_tokens > 0:
            ratio = min(8.0, max(0.125, usage.prompt_tokens / estimated_prompt))
            old = self._prompt_scale.get(model)
            self._prompt_scale[model] = ratio if old is None else old + a * (ratio - old)
        if usage.completion_tokens >= 0:
            old = self._answer.get(model)
            value = float(usage.completion_tokens)
            self._answer[model] = value if old is None else old + a * (value - old)


def find_usage(body: bytes) -> Usage | None:
    """The `usage` object of an OpenAI answer body or SSE event, without parsing the rest."""
    match = _USAGE.search(body)
    if match is None:
        return None
    try:
        data = orjson.loads(match.group(1))
    except orjson.JSONDecodeError:
        return None
    prompt = data.get("prompt_tokens")
    completion = data.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion)

"""The conversation a request belongs to, and how many tokens it will cost a node.

A conversation is what an engine's prefix cache can reuse: the same system prompt, the
same first user turn, and every later turn appended after them. Its key is, in order:
the client's `X-Session-Id`, the OpenAI `user` field, else a digest of the system prompt
and the first user turn (so learners sharing a strategy's system prompt are still told
apart). Legacy text completions have no turns: only the first two give them a key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from megacity.routing.classifier import estimate_tokens
from megacity.routing.policy import RouteHint
from megacity.routing.tokens import TokenLedger

_SYSTEM_ROLES = ("system", "developer")
DEFAULT_OUTPUT_TOKENS = 256  # expected answer length when a request gives no max_tokens


def route_hint(
    payload: dict[str, Any],
    model: str,
    zone: str | None,
    session_id: str | None,
    ledger: TokenLedger,
) -> RouteHint:
    """What the balancer needs of one chat/completion body: its conversation and tokens."""
    prompt = round(prompt_tokens(payload) * ledger.prompt_scale(model))
    output = output_tokens(payload, ledger.expected_answer(model))
    key = conversation_key(payload, session_id)
    opening = key is not None and key[:1] == b"p" and not _has_answer(payload)
    return RouteHint(zone, key, opening, prompt_tokens=prompt, output_tokens=output)


def _has_answer(payload: dict[str, Any]) -> bool:
    messages = payload.get("messages")
    return isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") == "assistant" for m in messages
    )


def conversation_key(payload: dict[str, Any], session_id: str | None) -> bytes | None:
    """A short digest naming the conversation of a chat/completion body, or None."""
    if session_id:
        return _digest(b"s", session_id.encode())
    user = payload.get("user")
    if isinstance(user, str) and user:
        return _digest(b"u", user.encode())
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return None
    system: Any = None
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in _SYSTEM_ROLES and system is None:
            system = message.get("content")
        elif role == "user":
            return _digest(b"p", orjson.dumps([system, message.get("content")]))
    return None


def prompt_tokens(payload: dict[str, Any]) -> int:
    """Estimated prompt tokens of a chat (every message) or completion body."""
    messages = payload.get("messages")
    if isinstance(messages, list):
        return sum(_content_tokens(m.get("content")) for m in messages if isinstance(m, dict))
    prompt = payload.get("prompt")
    if isinstance(prompt, str):
        return estimate_tokens(prompt)
    if isinstance(prompt, list):
        return sum(estimate_tokens(p) for p in prompt if isinstance(p, str))
    return 0


def output_tokens(payload: dict[str, Any], expected: float | None = None) -> int:
    """Answer tokens to reserve: the model's learnt mean, capped by max_tokens (× n)."""
    limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
    n = payload.get("n")
    choices = n if isinstance(n, int) and n > 0 else 1
    guess = DEFAULT_OUTPUT_TOKENS if expected is None else expected
    if isinstance(limit, int) and limit > 0:
        guess = min(guess, limit)
    return int(guess) * choices


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return estimate_tokens(content) + 4  # role and separators
    if isinstance(content, Sequence):
        total = 4
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                # An image costs the engine hundreds of tokens; the URL's length says nothing.
                total += estimate_tokens(text) if isinstance(text, str) else 256
        return total
    return 4


def _digest(kind: bytes, data: bytes) -> bytes:
    return kind + hashlib.blake2b(data, digest_size=12).digest()

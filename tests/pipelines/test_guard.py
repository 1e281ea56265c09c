"""A streamed LLM answer through the guard: placeholders restored, toxic output cut.

The upstream is a fake async iterator of SSE bytes shaped as vLLM sends them (one event
a chunk, or the last event and [DONE] together); the moderator is the real lexicon one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from megacity.config.limits import LimitsPolicy
from megacity.config.topology import ZoneSafety
from megacity.observability.metrics import Metrics
from megacity.pipelines.guard import Caller, Guarded, LLMGuard
from megacity.pipelines.guard_stream import MODERATE_EVERY, guarded_stream
from megacity.safety.firewall import PromptFirewall
from megacity.safety.moderation import LexiconModerator
from megacity.safety.pii import PIIMasker

TOXIC = "너 같은 병신은 꺼져 씨발"
DONE = b"data: [DONE]\n\n"


class Upstream:
    """SSE chunks of a chat stream; remembers whether the guard closed it."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent = 0
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self.sent == len(self.chunks):
            raise StopAsyncIteration
        self.sent += 1
        return self.chunks[self.sent - 1]

    async def aclose(self) -> None:
        self.closed = True


def _event(text: str | None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text else {}
    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + orjson.dumps({**body, "choices": [choice]}) + b"\n\n"


def _chunks(text: str, size: int = 3, *, done_apart: bool = False) -> list[bytes]:
    """`text` in `size`-character deltas, a stop event and [DONE] (together, or apart)."""
    chunks = [_event(text[i : i + size]) for i in range(0, len(text), size)]
    tail = [_event(None, "stop"), DONE] if done_apart else [_event(None, "stop") + DONE]
    return [*chunks, *tail]


def _guard() -> LLMGuard:
    return LLMGuard(
        firewall=PromptFirewall(),
        moderator=LexiconModerator(),
        masker=PIIMasker(),
        limiter=None,
        abuse=None,
        limits=LimitsPolicy(enabled=False),
        metrics=Metrics(),
    )


def _run(
    chunks: list[bytes],
    *,
    mapping: dict[str, str] | None = None,
    moderation: str = "block",
) -> tuple[list[dict[str, Any]], bytes, Upstream]:
    """The events the client gets (parsed, up to [DONE]), everything it got, and the upstream."""
    upstream = Upstream(chunks)
    policy = ZoneSafety(moderation=moderation)  # type: ignore[arg-type]
    guarded = Guarded(Caller("u_test", "edu", policy), mapping=dict(mapping or {}))

    async def collect() -> bytes:
        stream = guarded_stream(
            upstream, _guard(), guarded, restore=guarded.mapping, moderate=moderation != "off"
        )
        return b"".join([chunk async for chunk in stream])

    raw = asyncio.run(collect())
    events = []
    for part in raw.split(b"\n\n"):
        data = part.removeprefix(b"data: ")
        if data == b"[DONE]":
            break
        if data:
            events.append(orjson.loads(data))
    return events, raw, upstream


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["choices"][0]["delta"].get("content", "") for e in events)


def _finishes(events: list[dict[str, Any]]) -> list[str]:
    return [e["choices"][0]["finish_reason"] for e in events if e["choices"][0]["finish_reason"]]


def test_placeholders_split_across_chunks_are_restored() -> None:
    mapping = {"[PHONE_1]": "010-4821-7390", "[NAME_1]": "홍길동"}
    events, raw, upstream = _run(
        _chunks("[NAME_1] 학생, [PHONE_1]로 연락 주세요 ["), mapping=mapping
    )
    assert _text(events) == "홍길동 학생, 010-4821-7390로 연락 주세요 ["  # a lone "[" flushed
    assert b"PHONE_1" not in raw and b"NAME_1" not in raw
    assert _finishes(events) == ["stop"]
    assert raw.endswith(DONE) and raw.count(DONE) == 1
    assert upstream.closed


def test_a_benign_stream_is_relayed_unchanged() -> None:
    chunks = _chunks("The water cycle: evaporation, condensation, precipitation.")
    events, raw, _ = _run(chunks)
    assert raw == b"".join(chunks)
    assert _finishes(events) == ["stop"]


@pytest.mark.parametrize("done_apart", [False, True])
def test_a_short_toxic_answer_ends_with_content_filter(done_apart: bool) -> None:
    # Under MODERATE_EVERY characters the only pass is the last one: it must come before
    # [DONE], or a client (which stops reading at [DONE]) never learns it was cut.
    events, raw, upstream = _run(_chunks(TOXIC, done_apart=done_apart))
    assert _finishes(events)[-1] == "content_filter", raw[-300:]
    assert raw.endswith(DONE) and raw.count(DONE) == 1
    assert upstream.closed


def test_a_long_toxic_answer_is_cut_where_it_turns() -> None:
    benign = "Photosynthesis turns light, water and carbon dioxide into sugar. " * 4
    assert len(benign) >= MODERATE_EVERY
    text = benign + TOXIC + " and more text after it. " * 40
    events, raw, upstream = _run(_chunks(text, size=20))
    sent = _text(events)
    # Moderated every MODERATE_EVERY characters: at most that much (and one chunk) more
    # goes out after the toxic part before the pass that sees it cuts the stream.
    assert text.startswith(sent) and len(benign) < len(sent)
    assert len(sent) < len(benign) + len(TOXIC) + MODERATE_EVERY
    assert _finishes(events) == ["content_filter"]
    assert raw.endswith(DONE)
    assert upstream.sent < len(upstream.chunks) and upstream.closed  # the node is released


def test_a_flagging_zone_lets_a_toxic_answer_through() -> None:
    events, _, _ = _run(_chunks(TOXIC), moderation="flag")
    assert _text(events) == TOXIC
    assert _finishes(events) == ["stop"]


def test_moderation_off_relays_the_bytes() -> None:
    chunks = _chunks(TOXIC)
    _, raw, _ = _run(chunks, moderation="off")
    assert raw == b"".join(chunks)

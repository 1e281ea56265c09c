"""A streamed LLM answer through the guard: placeholders restored, output moderated.

The dispatcher relays whole SSE events, so each chunk parses on its own. Text deltas go
through one `StreamRestorer` per choice (a placeholder may be split across two deltas);
the text seen so far is moderated every `MODERATE_EVERY` characters and at the end.
When the zone blocks what the model wrote, the stream ends with a last chunk whose
finish_reason is "content_filter" (as OpenAI's own content filter does) and [DONE];
closing the upstream iterator releases the node, which stops generating.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from megacity.safety.pii import StreamRestorer

if TYPE_CHECKING:
    from megacity.pipelines.guard import Guarded, LLMGuard

MODERATE_EVERY = 200  # characters of new answer text between two moderation passes
MAX_MODERATED = 8000  # the tail of the answer a pass looks at (long answers stay cheap)
_DONE = b"data: [DONE]\n\n"


def moderated_text(text: str) -> str:
    """The part of an answer one moderation pass reads (its last MAX_MODERATED chars)."""
    return text[-MAX_MODERATED:]


async def guarded_stream(
    chunks: AsyncIterator[bytes],
    guard: LLMGuard,
    guarded: Guarded,
    *,
    restore: dict[str, str],
    moderate: bool,
) -> AsyncIterator[bytes]:
    """Relay `chunks`, rewriting text deltas; see the module docstring."""
    state = _StreamState(restore)
    try:
        async for chunk in chunks:
            out: list[bytes] = []
            for event in _events(chunk):
                data = _data(event)
                if data is None or data == b"[DONE]":
                    if data == b"[DONE]":
                        out.extend(state.flush_events())
                        # The last pass comes before [DONE]: clients stop reading there.
                        if moderate and state.unchecked() and await _cut(guard, guarded, state):
                            yield state.filter_event() + _DONE  # this chunk is not sent
                            return
                    out.append(event)
                    continue
                rewritten, body = state.rewrite(event, data)
                if body is not None:
                    await guard.settle(guarded, body.get("usage"))
                out.append(rewritten)
            if moderate and state.due() and await _cut(guard, guarded, state):
                yield state.filter_event() + _DONE  # this chunk's text is not sent
                return
            if out:
                yield b"".join(out)
        if moderate and state.unchecked() and await _cut(guard, guarded, state):
            yield state.filter_event() + _DONE
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()


async def _cut(guard: LLMGuard, guarded: Guarded, state: _StreamState) -> bool:
    state.checked = sum(len(t) for t in state.texts.values())
    return any([await guard.output_flagged(guarded, text) for text in state.texts.values()])


class _StreamState:
    """Per-stream text of each choice, its restorer, and the last event's envelope."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self.restorers: dict[int, StreamRestorer] = {}
        self.texts: dict[int, str] = {}
        self.checked = 0
        self.template: dict[str, Any] = {}  # id, object, created, model of the stream
        self.chat = True

    def rewrite(self, event: bytes, data: bytes) -> tuple[bytes, dict[str, Any] | None]:
        """The event with its deltas restored, and its parsed body (None if not JSON)."""
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            return event, None
        if not isinstance(body, dict):
            return event, None
        self.template = {k: body[k] for k in ("id", "object", "created", "model") if k in body}
        changed = False
        for choice in body.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            index = index if isinstance(index, int) else 0
            holder, key = content_slot(choice)
            self.chat = key == "content"
            text = holder.get(key) if holder is not None else None
            if holder is None or not isinstance(text, str) or not text:
                continue
            if self.mapping:
                restorer = self.restorers.setdefault(index, StreamRestorer(self.mapping))
                text = restorer.feed(text)
                holder[key] = text
                changed = True
            self.texts[index] = self.texts.get(index, "") + text
        if not changed:
            return event, body
        return b"data: " + orjson.dumps(body) + b"\n\n", body

    def flush_events(self) -> list[bytes]:
        """Text the restorers still hold (a trailing "[" that was not a placeholder)."""
        events = []
        for index, restorer in self.restorers.items():
            rest = restorer.flush()
            if rest:
                self.texts[index] = self.texts.get(index, "") + rest
                events.append(self._event(index, rest, None))
        return events

    def due(self) -> bool:
        return sum(len(t) for t in self.texts.values()) - self.checked >= MODERATE_EVERY

    def unchecked(self) -> bool:
        return sum(len(t) for t in self.texts.values()) > self.checked

    def filter_event(self) -> bytes:
        indexes = sorted(self.texts) or [0]
        return b"".join(self._event(i, None, "content_filter") for i in indexes)

    def _event(self, index: int, text: str | None, finish: str | None) -> bytes:
        if self.chat:
            choice: dict[str, Any] = {"index": index, "delta": {}, "finish_reason": finish}
            if text is not None:
                choice["delta"] = {"content": text}
        else:
            choice = {"index": index, "text": text or "", "finish_reason": finish}
        body = {**self.template, "choices": [choice]}
        return b"data: " + orjson.dumps(body) + b"\n\n"


def _events(chunk: bytes) -> list[bytes]:
    """Split a chunk of whole SSE events, each keeping its blank-line terminator."""
    parts = chunk.split(b"\n\n")
    events = [p + b"\n\n" for p in parts[:-1] if p]
    if parts[-1]:
        events.append(parts[-1])
    return events


def _data(event: bytes) -> bytes | None:
    """The payload of a single-line `data:` event (what OpenAI-compatible servers send)."""
    line = event.strip()
    if not line.startswith(b"data:") or b"\n" in line:
        return None
    return line[5:].strip()


def content_slot(choice: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Where a choice keeps its text: message.content (chat), delta.content, or text."""
    for name in ("message", "delta"):
        part = choice.get(name)
        if isinstance(part, dict):
            return part, "content"
    return choice, "text"

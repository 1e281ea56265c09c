"""The tutor's stream: named SSE events (stage, features, delta, result, error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson

from megacity.pipelines.multimodal.jsonstream import TextDelta
from megacity.safety.pii import StreamRestorer

if TYPE_CHECKING:
    from megacity.pipelines.multimodal.extract import Outcome

EventKind = Literal["stage", "features", "delta", "result", "error"]


@dataclass(frozen=True, slots=True)
class Event:
    """One event: `stage` (start/end, ms), `features` (one extractor's outcome), `delta`
    (feedback text as it is written), `result` (the final document) or `error` (the
    envelope); a stream always ends with `result` or `error`."""

    kind: EventKind
    data: dict[str, Any]

    def sse(self) -> bytes:
        return b"event: " + self.kind.encode() + b"\ndata: " + orjson.dumps(self.data) + b"\n\n"


def stage_event(name: str, status: str, ms: float | None = None, **extra: Any) -> Event:
    data: dict[str, Any] = {"stage": name, "status": status}
    if ms is not None:
        data["ms"] = round(ms, 1)
    data.update(extra)
    return Event("stage", data)


def features_event(outcome: Outcome) -> Event:
    data: dict[str, Any] = {
        "engine": outcome.name,
        "status": "ok" if outcome.ok else "degraded",
        "ms": round(outcome.seconds * 1000, 1),
    }
    if outcome.features is not None:
        data["features"] = outcome.features.model_dump(mode="json")
    else:
        data["reason"] = outcome.reason
        data["detail"] = outcome.detail
    return Event("features", data)


class Deltas:
    """`delta` events of the accelerator's text, PII placeholders restored across pieces."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self._mapping = mapping
        self._restorers: dict[tuple[str, int | None], StreamRestorer] = {}

    def feed(self, delta: TextDelta) -> Event | None:
        key = (delta.field, delta.index)
        if not self._mapping:
            return _delta_event(key, delta.text)
        restorer = self._restorers.setdefault(key, StreamRestorer(self._mapping))
        text = restorer.feed(delta.text)
        return _delta_event(key, text) if text else None

    def flush(self) -> list[Event]:
        out = [(key, r.flush()) for key, r in self._restorers.items()]
        return [_delta_event(key, text) for key, text in out if text]


def _delta_event(key: tuple[str, int | None], text: str) -> Event:
    data: dict[str, Any] = {"field": key[0], "text": text}
    if key[1] is not None:
        data["index"] = key[1]
    return Event("delta", data)

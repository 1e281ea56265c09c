"""Fusion: the extractors' outcomes as one typed, versioned document — JSON, not embeddings.

The document is what the LLM steps read (`prompt_json`, trimmed of URLs and long lists),
what the deterministic composer works from, what the result carries, and what the cache
keeps by media hash. Each extractor's features sit under its own name in `signals`, as
its own pydantic model validated them; a signal that failed is `null`, with a `degraded`
entry saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import orjson
from pydantic import BaseModel

from megacity.pipelines.multimodal.extract import Outcome
from megacity.pipelines.multimodal.request import MediaKind, TutorRequest

VERSION: Literal["1"] = "1"
PROMPT_LIST_ITEMS = 40  # items of any list the prompt shows
PROMPT_MAX_CHARS = 12_000
_PROMPT_DROP = frozenset({"overlay_url", "heatmap_url"})


class MediaInfo(BaseModel):
    kind: MediaKind
    sha256: str
    bytes: int


class Degraded(BaseModel):
    engine: str
    reason: str
    detail: str = ""


class Features(BaseModel):
    """Everything the tutor knows about one attempt (see the module docstring)."""

    version: Literal["1"] = VERSION
    scenario: str
    locale: str
    language: str  # spoken
    media: list[MediaInfo]
    question: str  # the learner's text (PII masked)
    script: str | None  # the line performed (PII masked)
    reference_id: str | None
    signals: dict[str, dict[str, Any] | None]
    degraded: list[Degraded]

    def duration_s(self) -> float | None:
        """The longest media duration any signal reports (for checking anchors)."""
        values = [
            float(v)
            for s in self.signals.values()
            if s is not None
            for k, v in s.items()
            if k == "duration_s" and isinstance(v, int | float)
        ]
        return max(values) if values else None

    def words(self) -> set[str]:
        """Words of the script and of what was heard (for checking anchors), casefolded."""
        found = set((self.script or "").casefold().split())
        speech = self.signals.get("speech") or {}
        found.update(str(w.get("word", "")).casefold().strip() for w in speech.get("words", ()))
        return {w.strip(".,!?\"'") for w in found if w}


def fuse(
    request: TutorRequest,
    scenario: str,
    question: str,
    script: str | None,
    outcomes: Iterable[Outcome],
    planned: Iterable[str],
) -> Features:
    """The document for `request`: every planned signal (null when missing), degraded reasons."""
    signals: dict[str, dict[str, Any] | None] = dict.fromkeys(planned)
    degraded: list[Degraded] = []
    for outcome in outcomes:
        if outcome.features is not None:
            signals[outcome.name] = outcome.features.model_dump(mode="json")
        else:
            signals[outcome.name] = None
            degraded.append(
                Degraded(
                    engine=outcome.name, reason=outcome.reason or "failed", detail=outcome.detail
                )
            )
    return Features(
        scenario=scenario,
        locale=request.locale,
        language=request.spoken_language(),
        media=[MediaInfo(kind=m.kind, sha256=m.sha256, bytes=m.size) for m in request.media],
        question=question,
        script=script,
        reference_id=request.reference_id,
        signals=signals,
        degraded=degraded,
    )


def prompt_json(features: Features, mask: Callable[[str], str] | None = None) -> str:
    """The document as the LLM reads it: compact JSON, no URLs or hashes, lists cut short,
    every text passed through `mask` (personal data in a transcript or a photo's text)."""
    data = features.model_dump(mode="json", exclude={"media"})
    data["media"] = [f"{m.kind} ({m.bytes} bytes)" for m in features.media]
    text = orjson.dumps(_trim(data, mask or _same)).decode()
    return text if len(text) <= PROMPT_MAX_CHARS else text[:PROMPT_MAX_CHARS] + "…"


def missing_text(features: Features) -> str:
    """One line naming the signals that are missing and why (the prompt says so)."""
    if not features.degraded:
        return "none"
    return "; ".join(f"{d.engine}: {d.reason}" for d in features.degraded)


def _same(text: str) -> str:
    return text


def _trim(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: _trim(v, mask) for k, v in value.items() if k not in _PROMPT_DROP}
    if isinstance(value, list):
        return [_trim(v, mask) for v in value[:PROMPT_LIST_ITEMS]]
    if isinstance(value, str) and len(value) > 3:
        return mask(value)
    return value

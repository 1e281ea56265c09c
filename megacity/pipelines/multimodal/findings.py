"""What the deterministic composer is built from: each extractor's scores and points.

Every extractor turns its own features into `Findings` — scores straight from the engine,
and short points in English and Korean, each anchored to a time, a body part or a word
where it can be — so the composer needs no knowledge of any engine, and a new extractor
brings its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where a point applies: seconds into the media, a body part, a word of the script."""

    time_s: float | None = None
    end_s: float | None = None
    part: str | None = None
    word: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("time_s", self.time_s), ("end_s", self.end_s),
                                  ("part", self.part), ("word", self.word)) if v is not None}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Point:
    """One sentence in both languages; `weight` orders points (most important first)."""

    en: str
    ko: str
    anchor: Anchor | None = None
    weight: float = 1.0

    def text(self, locale: str) -> str:
        return self.ko if locale == "ko" else self.en


@dataclass(frozen=True)
class Findings:
    """One extractor's contribution: scores, a summary line, strengths, fixes, exercises."""

    scores: dict[str, Any] = field(default_factory=dict)
    summary: tuple[Point, ...] = ()
    strengths: tuple[Point, ...] = ()
    fixes: tuple[Point, ...] = ()
    exercises: tuple[Point, ...] = ()
    hints: dict[str, str] = field(default_factory=dict)  # e.g. overlay_url, heatmap_url


def clock(seconds: float) -> str:
    """0:04-style time for a sentence."""
    whole = max(0, int(seconds))
    return f"{whole // 60}:{whole % 60:02d}"

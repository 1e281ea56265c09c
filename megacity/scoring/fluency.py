"""Fluency from word timings: which silences are breaks, and a 0–100 score.

Silence before a word is judged by what separates it from the previous word in the
reference: mid-phrase silence longer than the mode's ``break_s`` is an unexpected
break; at a comma or sentence end the tolerance is ``punctuation_break_s``. Silence up
to the tolerance is part of normal speech; the rest is pause time.

    fluency = 100 × (w_p · pause_score + (1 − w_p) · rate_score)
    pause_score = 1 − min(1, 2 · pause time / (speaking time + pause time))
    rate_score  = clamp((rate − halting) / (fluent − halting), 0, 1)

where speaking time is the words' durations plus tolerated silence, rate is heard units
per second of speaking time, and (fluent, halting) are the language's rates (English
1.8 / 0.6 words/s, Korean and Japanese 3.5 / 1.2 syllables or characters/s, Chinese
2.8 / 1.0 characters/s) times the mode's ``rate_factor``. Being fast costs nothing:
slurring shows in accuracy instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from .textnorm import Boundary


@dataclass(frozen=True, slots=True)
class ModeProfile:
    """How a practice mode treats silence (seconds) and speed (unitless factors)."""

    break_s: float | None  # mid-phrase silence above this is an unexpected break
    punctuation_break_s: float | None  # the same at a comma or sentence end
    missing_break_s: float | None  # less silence than this after a sentence end: missing break
    rate_factor: float  # scales the language's fluent and halting rates
    pause_weight: float  # w_p: share of fluency given to pauses, the rest to speech rate


@dataclass(frozen=True, slots=True)
class RateBand:
    """Speech rate in units per second: full marks at ``fluent``, zero at ``halting``."""

    fluent: float
    halting: float


# Shadowing follows a native recording, so waiting for it is normal; singing follows the
# song, so rests, instrumental breaks and held notes are the song's, not the singer's.
DEFAULT_MODES = MappingProxyType(
    {
        "read": ModeProfile(0.7, 2.0, 0.05, rate_factor=1.0, pause_weight=0.5),
        "shadowing": ModeProfile(1.0, 2.5, None, rate_factor=0.9, pause_weight=0.4),
        "singalong": ModeProfile(None, None, None, rate_factor=0.4, pause_weight=0.0),
    }
)
# English in words, Korean in syllables, Japanese in kana/kanji, Chinese in characters.
DEFAULT_RATES = MappingProxyType(
    {
        "en": RateBand(1.8, 0.6),
        "ko": RateBand(3.5, 1.2),
        "ja": RateBand(3.5, 1.2),
        "zh": RateBand(2.8, 1.0),
    }
)


class TimedEntry(NamedTuple):
    """One result entry in spoken order: its reference word (None if inserted) and timing."""

    word: int | None
    start: float | None  # None: not heard (omitted)
    end: float | None
    units: int  # comparison units heard in it


class Break(NamedTuple):
    """The silence before an entry (seconds) and how it was judged."""

    pause_before: float | None = None
    unexpected: bool = False
    missing: bool = False


def judge(
    entries: Sequence[TimedEntry],
    boundaries: Sequence[Boundary],
    profile: ModeProfile,
    band: RateBand,
) -> tuple[list[Break], float]:
    """Judge the silence before each entry (boundaries: after each reference word); fluency."""
    breaks: list[Break] = []
    reached = -1  # last reference word passed, spoken or not
    prev_end: float | None = None
    prev_reached = -1
    speaking = pausing = 0.0
    units = 0
    for entry in entries:
        upcoming = entry.word if entry.word is not None else reached + 1
        reached = max(reached, entry.word if entry.word is not None else -1)
        if entry.start is None or entry.end is None:
            breaks.append(Break())
            continue
        if prev_end is None:
            breaks.append(Break())
        else:
            gap = max(0.0, entry.start - prev_end)
            boundary = max(boundaries[max(prev_reached, 0) : upcoming], default=Boundary.NONE)
            tolerated, excess = _split_silence(gap, boundary, profile)
            speaking += tolerated
            pausing += excess
            missing = (
                profile.missing_break_s is not None
                and entry.word is not None
                and boundary == Boundary.SENTENCE
                and gap < profile.missing_break_s
            )
            breaks.append(Break(round(gap, 3), excess > 0, missing))
        speaking += entry.end - entry.start
        units += entry.units
        prev_end = entry.end if prev_end is None else max(prev_end, entry.end)
        prev_reached = reached
    if units == 0:
        return breaks, 0.0
    return breaks, fluency_score(units, speaking, pausing, profile, band)


def _split_silence(gap: float, boundary: Boundary, profile: ModeProfile) -> tuple[float, float]:
    """(silence that is part of normal speech, silence that is a pause) in seconds."""
    tolerance = profile.break_s if boundary == Boundary.NONE else profile.punctuation_break_s
    if tolerance is None:
        # Rate then measures articulation only, and silence is never a pause.
        return 0.0, 0.0
    return min(gap, tolerance), max(0.0, gap - tolerance)


def fluency_score(
    units: int, speaking: float, pausing: float, profile: ModeProfile, band: RateBand
) -> float:
    """Fluency 0–100 from heard units, speaking seconds and pause seconds."""
    fluent = band.fluent * profile.rate_factor
    halting = band.halting * profile.rate_factor
    rate = units / speaking if speaking > 0 else math.inf
    rate_score = min(1.0, max(0.0, (rate - halting) / (fluent - halting)))
    total = speaking + pausing
    pause_score = 1.0 - min(1.0, 2.0 * pausing / total) if total > 0 else 1.0
    weight = profile.pause_weight
    return 100.0 * (weight * pause_score + (1.0 - weight) * rate_score)

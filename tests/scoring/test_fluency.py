"""Breaks and fluency from word timings."""

from __future__ import annotations

import pytest

from megacity.scoring.fluency import (
    DEFAULT_MODES,
    DEFAULT_RATES,
    Break,
    TimedEntry,
    fluency_score,
    judge,
)
from megacity.scoring.textnorm import Boundary

EN = DEFAULT_RATES["en"]


def _entries(gaps: list[float], word_s: float = 0.3) -> list[TimedEntry]:
    """One entry per reference word, each word_s long, with the given silences between."""
    entries, clock = [], 0.0
    for index, gap in enumerate([0.0, *gaps]):
        clock += gap
        entries.append(TimedEntry(index, clock, clock + word_s, 1))
        clock += word_s
    return entries


@pytest.mark.parametrize(
    ("mode", "gap", "unexpected"),
    [
        ("read", 0.5, False),
        ("read", 0.85, True),
        ("shadowing", 0.85, False),
        ("shadowing", 1.5, True),
        ("singalong", 1.5, False),
        ("singalong", 10.0, False),
    ],
)
def test_mid_phrase_silence_by_mode(mode: str, gap: float, unexpected: bool) -> None:
    entries = _entries([0.05, gap, 0.05])
    breaks, _ = judge(entries, [Boundary.NONE] * 4, DEFAULT_MODES[mode], EN)
    assert breaks[0] == Break()
    assert breaks[2] == Break(pytest.approx(gap), unexpected, False)
    assert not breaks[1].unexpected and not breaks[3].unexpected


def test_silence_at_punctuation_is_tolerated_longer() -> None:
    entries = _entries([1.5, 1.5])
    boundaries = [Boundary.SENTENCE, Boundary.NONE, Boundary.NONE]
    breaks, _ = judge(entries, boundaries, DEFAULT_MODES["read"], EN)
    assert [b.unexpected for b in breaks] == [False, False, True]


def test_missing_break_after_a_sentence_end_in_read_mode_only() -> None:
    entries = _entries([0.0, 0.0])
    boundaries = [Boundary.SENTENCE, Boundary.NONE, Boundary.NONE]
    read, _ = judge(entries, boundaries, DEFAULT_MODES["read"], EN)
    assert [b.missing for b in read] == [False, True, False]
    shadowing, _ = judge(entries, boundaries, DEFAULT_MODES["shadowing"], EN)
    assert not any(b.missing for b in shadowing)


def test_boundary_is_found_across_omitted_words() -> None:
    # Word 1 (after a sentence end) is omitted: the silence before word 2 still crosses it.
    entries = [TimedEntry(0, 0.0, 0.3, 1), TimedEntry(1, None, None, 0), TimedEntry(2, 1.8, 2.1, 1)]
    boundaries = [Boundary.SENTENCE, Boundary.NONE, Boundary.NONE]
    breaks, _ = judge(entries, boundaries, DEFAULT_MODES["read"], EN)
    assert breaks[1] == Break()
    assert breaks[2] == Break(1.5, False, False)


def test_fluent_speech_scores_100_and_halting_speech_much_lower() -> None:
    read = DEFAULT_MODES["read"]
    _, fluent = judge(_entries([0.05] * 8), [Boundary.NONE] * 9, read, EN)
    _, halting = judge(_entries([1.2] * 8, word_s=0.6), [Boundary.NONE] * 9, read, EN)
    assert fluent == 100.0
    assert halting == pytest.approx(32.4, abs=0.1)


def test_fluency_score_formula() -> None:
    read = DEFAULT_MODES["read"]
    # 9 words in 4.5 s of speech + 8 × 0.7 s tolerated silence; 8 × 0.5 s of pauses.
    rate_score = (9 / 10.1 - 0.6) / (1.8 - 0.6)
    pause_score = 1 - 2 * 4.0 / 14.1
    expected = 100 * (0.5 * pause_score + 0.5 * rate_score)
    assert fluency_score(9, 10.1, 4.0, read, EN) == pytest.approx(expected)


def test_nothing_heard_is_zero_fluency() -> None:
    entries = [TimedEntry(0, None, None, 0)]
    breaks, fluency = judge(entries, [Boundary.NONE], DEFAULT_MODES["read"], EN)
    assert breaks == [Break()]
    assert fluency == 0.0

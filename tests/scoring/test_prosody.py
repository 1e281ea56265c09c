"""Intonation on espeak-ng lines: speaker-normalised contours, the end of the line, pauses,
pace, and a learner's prosody described without a reference."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from megacity.engines.pitch import extract_pitch
from megacity.scoring.contour import PitchTrack, TimedWord, median_hz, pauses
from megacity.scoring.prosody import compare_intonation, describe_prosody, direction
from tests.audio import samples_of, speak

STATEMENT = "You are coming home tonight."
QUESTION = "You are coming home tonight?"
WORDS = [TimedWord(w, 0.3 * k, 0.3 * k + 0.25) for k, w in enumerate(STATEMENT[:-1].split())]


@cache
def _line(text: str, pitch: int = 50, speed: int = 150, voice: str = "en") -> PitchTrack:
    samples, rate = samples_of(speak(text, voice, speed, pitch))
    return extract_pitch(samples, rate)


@pytest.mark.parametrize(("pitch", "speed"), [(30, 120), (80, 190), (50, 150)])
def test_the_same_line_at_another_pitch_and_speed_compares_high(pitch: int, speed: int) -> None:
    attempt, reference = _line(STATEMENT, pitch, speed), _line(STATEMENT)
    result = compare_intonation(attempt, reference)
    assert result.contour_correlation is not None and result.contour_correlation >= 0.9
    assert result.intonation >= 90 and result.score >= 85
    assert result.final_direction == result.reference_final_direction == "fall"
    ratio = 150 / speed
    assert result.rate_ratio == pytest.approx(1 / ratio, rel=0.12)  # speed is reported
    if speed != 150:
        assert any("%" in line.en and "%" in line.ko for line in result.feedback)


def test_different_base_pitches_are_normalised() -> None:
    low, high = _line(STATEMENT, 30, 150), _line(STATEMENT, 80, 150)
    assert median_hz(high) / median_hz(low) > 1.3  # really different voices
    assert compare_intonation(low, high).intonation >= 90


@pytest.mark.parametrize(("attempt", "reference", "mine", "theirs"),
                         [(QUESTION, STATEMENT, "rises", "falls"), (STATEMENT, QUESTION, "falls", "rises")])  # fmt: skip
def test_a_rising_reading_against_a_falling_one_compares_low_and_names_the_end(
    attempt: str, reference: str, mine: str, theirs: str
) -> None:
    result = compare_intonation(_line(attempt, 40, 140), _line(reference))
    assert result.intonation <= 50 and result.score <= 70
    same = compare_intonation(_line(reference, 40, 140), _line(reference))
    assert same.intonation - result.intonation >= 40
    first = result.feedback[0]
    assert first.en == f"Your voice {mine} at the end of the line where the actor's {theirs}."
    assert "문장 끝에서" in first.ko


def test_a_missing_pause_is_named_with_the_word_before_it() -> None:
    reference = _line("You are coming home, tonight.")
    words = [
        TimedWord("home", 0.0, float(pauses(reference)[0].start_s)),
        TimedWord("tonight", 9, 9),
    ]
    result = compare_intonation(_line(STATEMENT), reference, words)
    assert len(result.reference_pauses) == 1 and len(result.missing_pauses) == 1
    assert result.pauses == 0
    assert any(line.en == 'Pause after "home" as the actor does.' for line in result.feedback)
    extra = compare_intonation(reference, _line(STATEMENT))
    assert len(extra.extra_pauses) == 1 and extra.pauses == 0
    assert compare_intonation(reference, reference).pauses == 100


def test_where_the_contour_differs_most_is_named() -> None:
    other = _line("The weather was cold and windy yesterday.")
    result = compare_intonation(other, _line(STATEMENT), WORDS)
    assert result.score < 60
    if result.difference is not None:
        assert abs(result.difference.semitones) >= 2
        named = [line for line in result.feedback if "semitones" in line.en]
        assert named and "반음" in named[0].ko


def test_describe_a_line_without_a_reference() -> None:
    question, statement = describe_prosody(_line(QUESTION)), describe_prosody(_line(STATEMENT))
    assert question.final_direction == "rise" and statement.final_direction == "fall"
    assert statement.median_f0_hz is not None and 60 < statement.median_f0_hz < 200
    assert statement.range_semitones is not None and 1 < statement.range_semitones < 12
    slow, fast = (
        describe_prosody(_line(STATEMENT, 50, 110)),
        describe_prosody(_line(STATEMENT, 50, 200)),
    )
    assert slow.syllables_per_s is not None and fast.syllables_per_s is not None
    assert fast.syllables_per_s > 1.3 * slow.syllables_per_s
    assert fast.speaking_s < slow.speaking_s
    given = describe_prosody(_line(STATEMENT), syllables=7)  # you-are-com-ing-home-to-night
    assert given.syllables_per_s == pytest.approx(7 / given.speaking_s)
    assert len(describe_prosody(_line("You are coming home, tonight.")).pauses) == 1
    assert direction(2.0) == "rise" and direction(-2.0) == "fall" and direction(0.5) == "level"


def test_korean_lines_too() -> None:
    reference = _line("학교에 가요?", 50, 150, "ko")
    assert describe_prosody(reference).final_direction == "rise"
    assert compare_intonation(_line("학교에 가요?", 30, 120, "ko"), reference).intonation >= 85
    assert compare_intonation(_line("학교에 가요.", 30, 120, "ko"), reference).intonation <= 60


def test_silence_is_refused() -> None:
    silent = PitchTrack(np.arange(100) * 0.01, np.full(100, np.nan), np.full(100, -120.0))
    with pytest.raises(ValueError, match="voiced"):
        compare_intonation(silent, _line(STATEMENT))
    assert describe_prosody(silent).median_f0_hz is None

"""Sing-along scoring on tunes the tests synthesise: cents, octaves, rhythm, phrases."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from megacity.engines.pitch import extract_pitch
from megacity.scoring.contour import PitchTrack
from megacity.scoring.pitch import (
    Phrase,
    SingingConfig,
    SingingResult,
    onsets,
    phrases_from_rests,
    score_singing,
)
from tests.audio import MELODY, NOTE_S, REST_S, sing

RATE = 16_000


@cache
def _track(cents: float = 0.0, **kwargs: object) -> PitchTrack:
    return extract_pitch(sing(cents, **kwargs), RATE, voice="singing")  # type: ignore[arg-type]


def _score(attempt: PitchTrack, **kwargs: object) -> SingingResult:
    return score_singing(attempt, _track(), **kwargs)  # type: ignore[arg-type]


def test_the_same_melody_scores_at_least_95_wherever_it_starts() -> None:
    for start in (0.3, 0.9):
        result = _score(_track(start_s=start))
        assert result.score >= 95 and result.pitch.score >= 95
        assert result.pitch.median_error_cents is not None and result.pitch.median_error_cents < 10
        assert result.pitch.within_50_cents >= 0.95 and result.pitch.sung >= 0.95
        assert result.rhythm.score is not None and result.rhythm.score >= 95
        assert result.worst_phrases == ()
    late = _score(_track(start_s=0.9))
    assert late.rhythm.offset_ms == pytest.approx(600, abs=30)  # reported, not counted


def test_shifted_melodies_score_lower_the_further_they_are_off() -> None:
    scores = [_score(_track(cents)).pitch for cents in (0, 50, 100, 200)]
    values = [p.score for p in scores]
    assert values == sorted(values, reverse=True) and len(set(values)) == 4, values
    for cents, pitch in zip((50, 100, 200), scores[1:], strict=True):
        assert pitch.median_error_cents == pytest.approx(cents, abs=8)
        assert pitch.offset_cents == pytest.approx(cents, abs=8)  # sharp: positive
    assert scores[1].within_50_cents > 0.3 and scores[2].within_50_cents < 0.05
    flat = _score(_track(-100))
    assert flat.pitch.offset_cents == pytest.approx(-100, abs=8)
    assert any("100 cents flat" in line.en and "100센트 낮게" in line.ko for line in flat.feedback)


def test_an_octave_up_is_forgiven_only_when_asked() -> None:
    octave = _track(1200)
    forgiven = _score(octave)
    strict = _score(octave, config=SingingConfig(forgive_octave=False))
    assert forgiven.pitch.score >= 95 and forgiven.pitch.octave_shifted >= 0.95
    assert strict.pitch.score <= 10 and strict.pitch.median_error_cents == pytest.approx(
        1200, abs=10
    )
    assert any("octave" in line.en and "옥타브" in line.ko for line in forgiven.feedback)


def test_a_wrong_note_names_its_phrase() -> None:
    result = _score(_track(wrong_note=(2, 1)))
    assert result.worst_phrases == (2,)
    phrase = result.phrases[2]
    assert phrase.score < 85 and all(p.score >= 95 for p in result.phrases if p.index != 2)
    line = next(line for line in result.feedback if line.phrase == 2)
    assert line.en.startswith("Phrase 3 (0:03-0:05)") and line.ko.startswith("3번째 소절")
    assert result.score >= 85  # one note of sixteen


def test_phrases_from_lyrics_carry_their_text() -> None:
    lyrics = [
        Phrase(p.start_s, p.end_s, f"line {k + 1}")
        for k, p in enumerate(phrases_from_rests(_track()))
    ]
    result = _score(_track(wrong_note=(3, 2)), phrases=lyrics)
    assert result.worst_phrases == (3,)
    assert '"line 4"' in next(line.en for line in result.feedback if line.phrase == 3)


def test_rests_make_phrases_and_notes_make_onsets() -> None:
    phrases = phrases_from_rests(_track())
    assert len(phrases) == len(MELODY)
    step = 4 * NOTE_S + REST_S
    for k, p in enumerate(phrases):
        assert p.start_s == pytest.approx(0.3 + k * step, abs=0.05)
        assert p.end_s - p.start_s == pytest.approx(4 * NOTE_S, abs=0.08)
    found = onsets(_track())
    # 16 notes, one of them repeating the note before it (no step, no rest): 15 onsets.
    assert len(found) == 15
    assert found[0] == pytest.approx(0.3, abs=0.04)


def test_singing_slower_costs_rhythm_not_pitch() -> None:
    result = _score(_track(tempo=0.85))
    assert result.pitch.score >= 95
    assert result.rhythm.score is not None and result.rhythm.score < 80
    assert any("beat" in line.en for line in result.feedback)


def test_glides_compare_with_glides() -> None:
    glide = extract_pitch(sing(glide=True), RATE, voice="singing")
    assert score_singing(glide, glide).score == pytest.approx(100)
    assert score_singing(_track(), glide).pitch.score < score_singing(glide, glide).pitch.score


def test_result_is_json_ready_and_bad_tracks_are_refused() -> None:
    data = json.loads(json.dumps(_score(_track(100)).to_dict(), allow_nan=False))
    assert set(data) == {"score", "pitch", "rhythm", "phrases", "worst_phrases", "feedback"}
    assert data["feedback"][0]["en"] and data["feedback"][0]["ko"]
    silent = PitchTrack(np.arange(100) * 0.01, np.full(100, np.nan), np.full(100, -120.0))
    with pytest.raises(ValueError, match="attempt has no voiced"):
        score_singing(silent, _track())
    with pytest.raises(ValueError, match="reference has no voiced"):
        score_singing(_track(), silent)

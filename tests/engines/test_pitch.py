"""F0 extraction (Praat through parselmouth) and the stored pitch-track format."""

from __future__ import annotations

import numpy as np
import pytest

from megacity.engines.pitch import extract_pitch, track_from_npz, track_to_npz
from megacity.scoring.contour import PitchTrack, TimedWord, active, pauses, semitones
from megacity.scoring.pitch import Phrase

RATE = 16_000


def _tone(hz: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.1 * np.sin(4 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("hz", [98.0, 220.0, 440.0, 880.0])
def test_tones_are_measured_within_five_cents(hz: float) -> None:
    track = extract_pitch(_tone(hz), RATE, voice="singing")
    voiced = track.f0_hz[track.voiced]
    assert track.voiced.mean() >= 0.9
    cents = 1200 * np.log2(voiced / hz)
    assert np.median(np.abs(cents)) < 5
    assert track.hop_s == pytest.approx(0.01, abs=1e-6)
    assert track.mfcc is not None and track.mfcc.shape == (len(track.times), 13)


def test_other_sample_rates_and_the_speech_range() -> None:
    track = extract_pitch(_tone(200.0, rate=44_100), 44_100)
    assert np.median(track.f0_hz[track.voiced]) == pytest.approx(200.0, rel=0.005)
    high = extract_pitch(_tone(880.0), RATE)  # above speech's 600 Hz ceiling
    assert np.nanmax(high.f0_hz, initial=0.0) <= 600


def test_silence_and_noise_are_unvoiced_and_silence_is_quiet() -> None:
    silence = extract_pitch(np.zeros(RATE, dtype=np.float32), RATE)
    assert not silence.voiced.any() and silence.energy_db.max() <= -100
    noise = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)
    assert extract_pitch(noise, RATE).voiced.mean() < 0.1


def test_loudness_gives_activity_and_pauses() -> None:
    x = np.concatenate([_tone(200.0, 0.5), np.zeros(RATE // 2, np.float32), _tone(250.0, 0.5)])
    track = extract_pitch(x, RATE)
    assert active(track).sum() * track.hop_s == pytest.approx(1.0, abs=0.08)
    (pause,) = pauses(track)
    assert pause.start_s == pytest.approx(0.5, abs=0.03) and pause.duration_s == pytest.approx(
        0.5, abs=0.05
    )
    st = semitones(track, 200.0)
    assert np.nanmax(st) == pytest.approx(12 * np.log2(250 / 200), abs=0.1)


def test_a_track_and_its_words_survive_storage() -> None:
    track = extract_pitch(_tone(300.0), RATE)
    words = [TimedWord("별빛이", 0.1, 0.5), TimedWord("내린다", 0.5, 0.9)]
    lines = [Phrase(0.1, 0.9, "별빛이 내린다")]
    again, got, phrases = track_from_npz(track_to_npz(track, words, lines))
    assert got == words and phrases == lines
    np.testing.assert_allclose(again.times, track.times)
    np.testing.assert_allclose(again.f0_hz, track.f0_hz, rtol=1e-6)
    assert again.mfcc is not None and again.mfcc.shape == (len(track.times), 13)
    with pytest.raises(ValueError, match="pitch track"):
        track_from_npz(b"not an npz at all")


@pytest.mark.parametrize(
    ("samples", "rate", "message"),
    [
        (np.zeros(100, np.float32), RATE, "0.1 s"),
        (np.full(RATE, np.nan, np.float32), RATE, "finite"),
        (np.zeros(RATE, np.float32), 100, "sample_rate"),
    ],
)
def test_bad_samples_are_refused(samples: np.ndarray, rate: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extract_pitch(samples, rate)


def test_bad_tracks_are_refused() -> None:
    t = np.arange(10) * 0.01
    with pytest.raises(ValueError, match="increasing"):
        PitchTrack(t[::-1].copy(), np.full(10, 100.0), np.zeros(10))
    with pytest.raises(ValueError, match="positive"):
        PitchTrack(t, np.full(10, -5.0), np.zeros(10))
    with pytest.raises(ValueError, match="same length"):
        PitchTrack(t, np.full(9, 100.0), np.zeros(10))

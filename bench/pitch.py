"""Pitch benchmark: F0 extraction per second of audio with both candidate libraries, and
the sing-along and shadowing scores of a 30 s attempt.

* Praat's autocorrelation tracker through praat-parselmouth (what the product uses, via
  ``engines.pitch.extract_pitch``, which adds loudness and MFCCs) against librosa's pYIN
  (a bench-only dependency), same audio, same 10 ms hop and range, in the same run:
  time per second of audio, pYIN's first call (numba compiling), and how far apart the two
  are in cents on frames both call voiced.
* ``score_singing`` and ``compare_intonation`` on 30 s attempts against 30 s references
  (target: under 50 ms each on this CPU, beside extraction).

Usage: python bench/pitch.py [--runs N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import median_ms, table  # noqa: E402

from megacity.engines.audio import SAMPLE_RATE, decode_audio  # noqa: E402
from megacity.engines.pitch import HOP_S, RANGES_HZ, extract_pitch  # noqa: E402
from megacity.scoring.pitch import score_singing  # noqa: E402
from megacity.scoring.prosody import compare_intonation  # noqa: E402
from tests.audio import sing  # noqa: E402

PARAGRAPH = (
    "You are coming home tonight. The weather was cold and windy yesterday, but today the sun"
    " is out. We will meet at the station at seven, and then we will walk to the river. "
)


def _speech(seconds: float, pitch: int = 50, speed: int = 150) -> np.ndarray:
    text = PARAGRAPH * 8
    wav = subprocess.run(
        ["espeak-ng", "-v", "en", "-p", str(pitch), "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    samples = decode_audio(wav, max_seconds=600)
    return samples[: int(seconds * SAMPLE_RATE)]


def _singing(seconds: float, cents: float = 0.0) -> np.ndarray:
    one = sing(cents)
    return np.tile(one, int(np.ceil(seconds * SAMPLE_RATE / one.size)))[
        : int(seconds * SAMPLE_RATE)
    ]


def _praat_f0(x: np.ndarray, voice: str) -> np.ndarray:
    import parselmouth

    lo, hi = RANGES_HZ[voice]
    sound = parselmouth.Sound(x.astype(np.float64), sampling_frequency=SAMPLE_RATE)
    pitch = sound.to_pitch_ac(time_step=HOP_S, pitch_floor=lo, pitch_ceiling=hi)
    f0 = pitch.selected_array["frequency"]
    return np.where(f0 > 0, f0, np.nan)


def _pyin_f0(x: np.ndarray, voice: str) -> np.ndarray:
    import librosa

    lo, hi = RANGES_HZ[voice]
    f0, _, _ = librosa.pyin(x, fmin=lo, fmax=hi, sr=SAMPLE_RATE, frame_length=1024,
                            hop_length=int(HOP_S * SAMPLE_RATE))  # fmt: skip
    return np.asarray(f0)


def _agreement(a: np.ndarray, b: np.ndarray) -> str:
    n = min(len(a), len(b))
    both = np.isfinite(a[:n]) & np.isfinite(b[:n])
    if not both.any():
        return "-"
    cents = np.abs(1200 * np.log2(a[:n][both] / b[:n][both]))
    return f"{np.median(cents):.1f} ¢ median, {np.mean(cents > 50) * 100:.1f} % > 50 ¢"


def extraction(runs: int) -> None:
    rows = []
    for name, voice, audio in (
        ("singing, 10 s", "singing", _singing(10.0)),
        ("speech (espeak-ng), 10 s", "speech", _speech(10.0)),
    ):
        seconds = audio.size / SAMPLE_RATE
        t0 = time.perf_counter()
        pyin_first = _pyin_f0(audio[: SAMPLE_RATE * 2], voice)
        first = time.perf_counter() - t0
        del pyin_first
        praat = median_ms(lambda a=audio, v=voice: _praat_f0(a, v), runs)
        full = median_ms(lambda a=audio, v=voice: extract_pitch(a, SAMPLE_RATE, voice=v), runs)  # type: ignore[arg-type]
        pyin = median_ms(lambda a=audio, v=voice: _pyin_f0(a, v), max(1, runs // 3))
        agree = _agreement(_praat_f0(audio, voice), _pyin_f0(audio, voice))
        rows.append([name, f"{praat / seconds:.1f} ms", f"{full / seconds:.1f} ms",
                     f"{pyin / seconds:.0f} ms", f"{pyin / praat:.0f}×", f"{first:.1f} s", agree])  # fmt: skip
    table(
        "F0 extraction per second of audio (16 kHz, 10 ms hop), one process, same run",
        [
            "audio",
            "praat-parselmouth",
            "+ loudness, MFCC",
            "librosa pYIN",
            "pYIN / Praat",
            "pYIN 1st call",
            "Praat vs pYIN",
        ],
        rows,
    )


def scoring(runs: int) -> None:
    ref_song = extract_pitch(_singing(30.0), SAMPLE_RATE, voice="singing")
    try_song = extract_pitch(_singing(30.0, 60.0), SAMPLE_RATE, voice="singing")
    ref_line = extract_pitch(_speech(30.0), SAMPLE_RATE)
    try_line = extract_pitch(_speech(30.0, 30, 130), SAMPLE_RATE)
    sung = median_ms(lambda: score_singing(try_song, ref_song), runs)
    said = median_ms(lambda: compare_intonation(try_line, ref_line), runs)
    table(
        "Scoring a 30 s attempt against a 30 s reference (3,000 frames each), median",
        ["what", "time", "target"],
        [
            ["sing-along: DTW, cents, onsets, phrases, feedback", f"{sung:.1f} ms", "< 50 ms"],
            ["shadowing: DTW, contour, end, pauses, pace, feedback", f"{said:.1f} ms", "< 50 ms"],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    extraction(args.runs)
    scoring(args.runs)


if __name__ == "__main__":
    main()

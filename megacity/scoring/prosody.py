"""Prosody of speech: a learner's intonation, pauses and pace, alone or against a reference
line (shadowing a K-Drama actor).

Pitch is compared speaker-normalised: semitones around the speaker's own median F0, so a
child and an adult actor, or espeak at ``-p 30`` and ``-p 80``, compare equal when their
melodies are the same. Frames over an octave from the median are pitch-tracking errors
(octave jumps, creak) and count as unvoiced.

Without a reference (``describe_prosody``): median F0, range (10th to 90th percentile, in
semitones), the direction at the end of the line, speech rate and pauses.

Against a reference (``compare_intonation``), after aligning the two recordings
(``contour.align``, MFCCs and voicing: the same sounds, whatever the voice):

* intonation = 0.6 · contour + 0.4 · end, where contour maps the Pearson correlation of
  the aligned normalised contours through ``CORRELATION_ANCHORS`` (r 0.3 → 0, 0.6 → 40,
  0.8 → 75, 0.9 → 90, ≥ 0.97 → 100) and end is 100 when the line ends in the same
  direction (rise, fall, level), 50 when one of them is level, 0 when one rises where
  the other falls;
* pauses = 100 · matched / (reference pauses + extra pauses), 100 when neither has any;
  a reference pause is matched by an attempt pause overlapping its aligned time ± 0.15 s;
* rate = 100 within ±15 % of the reference's speed (speaking time without pauses), 0 at
  ±50 % or more, linear in the log of the ratio between;
* prosody = 0.6 · intonation + 0.2 · pauses + 0.2 · rate.

The end direction is how far the pitch moves over the line's last voiced ``FINAL_WINDOW_S``:
from its lowest point up to the end (a rise) or from its highest point down (a fall),
whichever is larger; a rise from +1.5 semitones, a fall from −1.5, level between.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .contour import Alignment, Pause, PitchTrack, TimedWord, align, pauses, speaking_s
from .contour import semitones as _semitones
from .prosody_feedback import Line, intonation_feedback

Direction = Literal["rise", "fall", "level"]
OCTAVE_ERROR_ST = 12.0
FINAL_MIN_S = 0.12
FINAL_WINDOW_S = 0.35
FINAL_EDGE_S = 0.05
DIRECTION_ST = 1.5
CONTOUR_WEIGHT = 0.6  # the rest is the end of the line: a question and a statement differ there
CORRELATION_ANCHORS = ((0.3, 0.0), (0.6, 40.0), (0.8, 75.0), (0.9, 90.0), (0.97, 100.0))
_R = np.array([r for r, _ in CORRELATION_ANCHORS])
_R_SCORE = np.array([v for _, v in CORRELATION_ANCHORS])
WEIGHTS = {"intonation": 0.6, "pauses": 0.2, "rate": 0.2}
RATE_OK, RATE_ZERO = 1.15, 1.5
PAUSE_SLACK_S = 0.15
DIFFERENCE_WINDOW_S = 0.3
DIFFERENCE_MIN_ST = 2.0
_NUCLEUS_DB = 2.0  # an energy peak this far above its surroundings is a syllable nucleus
_NUCLEUS_GAP_S = 0.1


@dataclass(frozen=True)
class ProsodyFeatures:
    """A line as spoken, without a reference: pitch (Hz, semitones), direction, pace, pauses."""

    duration_s: float
    speaking_s: float
    voiced_share: float
    median_f0_hz: float | None
    range_semitones: float | None
    final_direction: Direction | None
    final_change_semitones: float | None
    syllables_per_s: float | None
    pauses: tuple[Pause, ...]


@dataclass(frozen=True)
class Difference:
    """Where the learner's normalised pitch differs most from the reference's (reference time)."""

    start_s: float
    end_s: float
    semitones: float  # attempt − reference: < 0 lower, > 0 higher
    words: tuple[str, ...]


@dataclass(frozen=True)
class IntonationResult:
    """Shadowing prosody against a reference line: scores 0–100 and what they rest on."""

    score: float
    intonation: float
    contour_correlation: float | None
    final_direction: Direction | None
    reference_final_direction: Direction | None
    pauses: float
    reference_pauses: tuple[Pause, ...]
    attempt_pauses: tuple[Pause, ...]
    missing_pauses: tuple[Pause, ...]  # reference pauses the learner did not make
    extra_pauses: tuple[Pause, ...]  # the learner's pauses the reference does not have
    rate: float
    rate_ratio: float  # the learner's speed / the reference's: > 1 faster
    difference: Difference | None
    feedback: tuple[Line, ...]


def normalized_semitones(track: PitchTrack) -> np.ndarray:
    """Semitones around the speaker's median F0; NaN where unvoiced or an octave error."""
    st = _semitones(track)
    return np.where(np.abs(st) > OCTAVE_ERROR_ST, np.nan, st)


def final_change(track: PitchTrack, st: np.ndarray | None = None) -> float | None:
    """Semitones the pitch moves at the end of the line (None: too little voice there).

    Over the last ``FINAL_WINDOW_S`` of voiced frames: the end (median of the last 50 ms)
    minus the lowest or the highest point before it (medians over 50 ms), whichever is
    further: a final rise from a dip, or a final fall from a peak.
    """
    st = normalized_semitones(track) if st is None else st
    voiced = np.flatnonzero(np.isfinite(st))
    hop = track.hop_s
    last = voiced[voiced >= voiced[-1] - round(FINAL_WINDOW_S / hop)] if voiced.size else voiced
    if len(last) * hop < FINAL_MIN_S:
        return None
    edge = max(1, round(FINAL_EDGE_S / hop))
    values = st[last]
    smooth = np.array(
        [np.median(values[max(0, k - edge // 2) : k + edge // 2 + 1]) for k in range(len(values))]
    )
    end = float(np.median(values[-edge:]))
    rise, fall = end - float(smooth.min()), end - float(smooth.max())
    return rise if abs(rise) >= abs(fall) else fall


def direction(change: float | None) -> Direction | None:
    """rise, fall or level for a final change in semitones."""
    if change is None:
        return None
    return "rise" if change >= DIRECTION_ST else "fall" if change <= -DIRECTION_ST else "level"


def _nuclei(track: PitchTrack) -> int:
    """Syllable nuclei: peaks of the (smoothed) loudness in voiced frames, ≥ 0.1 s apart."""
    e = np.convolve(track.energy_db, np.ones(5) / 5, mode="same")
    gap = max(1, round(_NUCLEUS_GAP_S / track.hop_s))
    count, last = 0, -gap
    for i in range(1, len(e) - 1):
        if not track.voiced[i] or e[i] < e[i - 1] or e[i] < e[i + 1] or i - last < gap:
            continue
        lo, hi = max(0, i - gap), min(len(e), i + gap + 1)
        if e[i] - min(e[lo:i].min(), e[i + 1 : hi].min()) >= _NUCLEUS_DB:
            count, last = count + 1, i
    return count


def describe_prosody(track: PitchTrack, syllables: int | None = None) -> ProsodyFeatures:
    """A learner's prosody without a reference; ``syllables`` (if known from the text) gives the rate."""
    st = normalized_semitones(track)
    voiced = np.isfinite(st)
    f0 = track.f0_hz[voiced]
    speaking = speaking_s(track)
    count = syllables if syllables is not None else _nuclei(track)
    change = final_change(track, st) if voiced.any() else None
    return ProsodyFeatures(
        duration_s=float(track.times[-1] - track.times[0]) + track.hop_s,
        speaking_s=speaking,
        voiced_share=float(voiced.mean()),
        median_f0_hz=float(np.median(f0)) if f0.size else None,
        range_semitones=float(np.percentile(st[voiced], 90) - np.percentile(st[voiced], 10))
        if voiced.any()
        else None,
        final_direction=direction(change),
        final_change_semitones=change,
        syllables_per_s=count / speaking if speaking > 0 and count else None,
        pauses=pauses(track),
    )


def _correlation(al: Alignment, sa: np.ndarray, sr: np.ndarray) -> float | None:
    i, j = al.path[:, 0], al.path[:, 1]
    ok = np.isfinite(sa[i]) & np.isfinite(sr[j])
    if ok.sum() < 10 or np.std(sa[i][ok]) < 1e-6 or np.std(sr[j][ok]) < 1e-6:
        return None
    return float(np.corrcoef(sa[i][ok], sr[j][ok])[0, 1])


def _end_score(mine: Direction | None, theirs: Direction | None) -> float:
    if mine is None or theirs is None or mine == theirs:
        return 100.0 if mine == theirs else 50.0
    return 50.0 if "level" in (mine, theirs) else 0.0


def _pause_match(
    al: Alignment, attempt: PitchTrack, reference: PitchTrack
) -> tuple[tuple[Pause, ...], tuple[Pause, ...], tuple[Pause, ...], tuple[Pause, ...], float]:
    ref_p, att_p = pauses(reference), pauses(attempt)
    used: set[int] = set()
    missing = []
    for p in ref_p:
        lo = al.attempt_time(attempt, reference, p.start_s) - PAUSE_SLACK_S
        hi = al.attempt_time(attempt, reference, p.end_s) + PAUSE_SLACK_S
        hit = next((k for k, q in enumerate(att_p) if k not in used and q.start_s < hi and q.end_s > lo), None)  # fmt: skip
        if hit is None:
            missing.append(p)
        else:
            used.add(hit)
    extra = tuple(q for k, q in enumerate(att_p) if k not in used)
    total = len(ref_p) + len(extra)
    score = 100.0 * (len(ref_p) - len(missing)) / total if total else 100.0
    return ref_p, att_p, tuple(missing), extra, score


def _rate(attempt: PitchTrack, reference: PitchTrack) -> tuple[float, float]:
    ratio = speaking_s(reference) / max(speaking_s(attempt), 1e-3)
    off = abs(math.log(ratio))
    score = 100.0 * min(1.0, max(0.0, (math.log(RATE_ZERO) - off) / math.log(RATE_ZERO / RATE_OK)))
    return ratio, score


def _difference(
    al: Alignment,
    reference: PitchTrack,
    sa: np.ndarray,
    sr: np.ndarray,
    words: Sequence[TimedWord],
) -> Difference | None:
    """The reference window (DIFFERENCE_WINDOW_S) where the aligned contours differ most."""
    i, j = al.path[:, 0], al.path[:, 1]
    diff = sa[i] - sr[j]
    ok = np.isfinite(diff)
    if ok.sum() < 10:
        return None
    per_ref = np.full(len(reference.times), np.nan)
    sums = np.bincount(j[ok], diff[ok], minlength=len(reference.times))
    counts = np.bincount(j[ok], minlength=len(reference.times))
    per_ref[counts > 0] = sums[counts > 0] / counts[counts > 0]
    k = max(1, round(DIFFERENCE_WINDOW_S / reference.hop_s))
    filled = np.nan_to_num(per_ref)
    seen = np.isfinite(per_ref).astype(np.float64)
    window = np.ones(k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.convolve(filled, window, "valid") / np.convolve(seen, window, "valid")
    coverage = np.convolve(seen, window, "valid") / k
    mean = np.where(coverage >= 0.5, mean, 0.0)
    best = int(np.argmax(np.abs(mean)))
    if abs(mean[best]) < DIFFERENCE_MIN_ST:
        return None
    start, end = float(reference.times[best]), float(reference.times[best + k - 1])
    said = tuple(w.text for w in words if w.start_s < end and w.end_s > start)
    return Difference(start, end, float(mean[best]), said)


def compare_intonation(
    attempt: PitchTrack,
    reference: PitchTrack,
    reference_words: Sequence[TimedWord] = (),
) -> IntonationResult:
    """Shadowing prosody of ``attempt`` against ``reference`` (see the module docstring)."""
    if not attempt.voiced.any() or not reference.voiced.any():
        raise ValueError("both recordings need voiced speech")
    al = align(attempt, reference, use_pitch=False)
    sa, sr = normalized_semitones(attempt), normalized_semitones(reference)
    r = _correlation(al, sa, sr)
    contour = float(np.interp(r, _R, _R_SCORE)) if r is not None else 0.0
    mine, theirs = direction(final_change(attempt, sa)), direction(final_change(reference, sr))
    intonation = CONTOUR_WEIGHT * contour + (1 - CONTOUR_WEIGHT) * _end_score(mine, theirs)
    ref_p, att_p, missing, extra, pause_score = _pause_match(al, attempt, reference)
    ratio, rate_score = _rate(attempt, reference)
    score = (WEIGHTS["intonation"] * intonation + WEIGHTS["pauses"] * pause_score
             + WEIGHTS["rate"] * rate_score)  # fmt: skip
    diff = _difference(al, reference, sa, sr, reference_words)
    missing_after = tuple(_word_before(p.start_s, reference_words) for p in missing)
    extra_after = tuple(
        _word_before(_reference_time(al, attempt, reference, p.start_s), reference_words)
        for p in extra
    )
    return IntonationResult(
        score=score,
        intonation=intonation,
        contour_correlation=r,
        final_direction=mine,
        reference_final_direction=theirs,
        pauses=pause_score,
        reference_pauses=ref_p,
        attempt_pauses=att_p,
        missing_pauses=missing,
        extra_pauses=extra,
        rate=rate_score,
        rate_ratio=ratio,
        difference=diff,
        feedback=intonation_feedback(
            mine, theirs, diff, ratio, rate_score, missing_after, extra_after
        ),
    )


def _word_before(t: float, words: Sequence[TimedWord]) -> str | None:
    """The word said last before time ``t`` (s), if any."""
    before = [w for w in words if w.end_s <= t + PAUSE_SLACK_S]
    return before[-1].text if before else None


def _reference_time(al: Alignment, attempt: PitchTrack, reference: PitchTrack, t: float) -> float:
    i = int(np.clip(np.searchsorted(attempt.times, t), 0, len(attempt.times) - 1))
    cols = al.path[al.path[:, 0] == i, 1]
    return float(reference.times[cols].mean()) if cols.size else t

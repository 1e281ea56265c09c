"""Sing-along scoring: pitch accuracy in cents, rhythm (note onsets), per-phrase scores.

After aligning the attempt with the reference (``contour.align`` with the melody's shape:
MFCCs, voicing and semitones around each singer's median, so a transposed or octave-up
attempt aligns by its tune), every voiced reference frame is compared with the attempt
frames matched to it:

* error in cents ``1200 · log2(f_attempt / f_reference)``; with ``forgive_octave`` a
  whole number of octaves is taken off first (a child singing an octave up is right);
* pitch = 100 × mean credit over the reference's voiced frames, where credit follows
  ``PITCH_CREDIT`` (≤ 25 cents 1, 50 → 0.9, 100 → 0.6, 200 → 0.2, ≥ 300 → 0) and an
  unvoiced attempt (not sung) earns 0; reported with the median absolute error and the
  share of frames within 50 cents (over frames where both sing);
* rhythm: note onsets (a voiced start after silence, or a step of at least
  ``STEP_ST`` semitones between two steady notes) in both recordings; the attempt's are
  shifted by the median offset of the whole alignment (a recording is not synchronised
  with the song: only the timing of the notes relative to each other counts); each
  reference onset earns 1 when an attempt onset lies within 50 ms, falling to 0 at
  300 ms; rhythm = 100 × Σ credit / max(reference onsets, attempt onsets in that span);
* score (the ``prosody`` of a sing-along) = 0.7 · pitch + 0.3 · rhythm;
* phrases (given, from the lyrics' lines, or the reference's voiced stretches between
  rests of at least ``PHRASE_GAP_S``) get the same scores over their own frames and
  onsets; the worst ones below ``PHRASE_OK`` are named in the feedback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .contour import Alignment, PitchTrack, align, jsonable, runs
from .contour import semitones as _semitones
from .prosody_feedback import Line, singing_feedback

PITCH_CREDIT = ((0.0, 1.0), (25.0, 1.0), (50.0, 0.9), (100.0, 0.6), (200.0, 0.2), (300.0, 0.0))
_CREDIT_CENTS = np.array([c for c, _ in PITCH_CREDIT])
_CREDIT = np.array([v for _, v in PITCH_CREDIT])
PITCH_WEIGHT = 0.7
ONSET_FULL_S, ONSET_ZERO_S = 0.05, 0.3
STEP_ST = 0.8  # a step between two steady notes at least this big is a new note
STEADY_ST = 0.35  # a note is steady when its frames stay within this (std, semitones)
NOTE_S = 0.05  # frames on each side of a step that must be steady
MIN_REST_S = 0.05  # unvoiced this long before a voiced frame makes it an onset
PHRASE_GAP_S = 0.3
MIN_PHRASE_S = 0.6
PHRASE_OK = 85.0
WORSE_BY = 5.0  # points below the attempt's own score that single a phrase out
MAX_WORST = 3
# The recording is aligned with the song as a whole (its active span); within that, notes
# may come early or late by this much (rhythm scores that): a wider band would let the
# alignment slide a wrong note onto a right one nearby.
BAND_MIN_S = 0.3
BAND_FRACTION = 0.04
TIME_MAP_S = 1.0  # pitch is read through the alignment's running median over this long


@dataclass(frozen=True)
class SingingConfig:
    """Options: forgive whole-octave differences (a child singing an octave up)."""

    forgive_octave: bool = True


@dataclass(frozen=True)
class Phrase:
    """A stretch of the reference (seconds), with its lyrics when known."""

    start_s: float
    end_s: float
    text: str | None = None


@dataclass(frozen=True)
class PitchAccuracy:
    """Pitch against the reference: score 0–100, cents (median absolute error, signed
    median: < 0 flat), share of frames within 50 cents, and how much was sung at all."""

    score: float
    median_error_cents: float | None
    offset_cents: float | None
    within_50_cents: float
    sung: float  # share of the reference's voiced frames the learner sang
    octave_shifted: float  # share of compared frames forgiven a whole-octave difference


@dataclass(frozen=True)
class Rhythm:
    """Note onsets against the reference's: score 0–100 and timing (ms)."""

    score: float | None
    reference_onsets: int
    matched_onsets: int
    median_error_ms: float | None
    offset_ms: float


@dataclass(frozen=True)
class PhraseScore:
    """One phrase of the reference: its scores and how far off its pitch was."""

    index: int
    start_s: float
    end_s: float
    text: str | None
    score: float
    pitch: float
    rhythm: float | None
    median_error_cents: float | None
    offset_cents: float | None


@dataclass(frozen=True)
class SingingResult:
    """A sing-along attempt against its reference."""

    score: float
    pitch: PitchAccuracy
    rhythm: Rhythm
    phrases: tuple[PhraseScore, ...]
    worst_phrases: tuple[int, ...]
    feedback: tuple[Line, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain values (floats rounded to 3 decimals)."""
        out: dict[str, Any] = jsonable(self)
        return out


def phrases_from_rests(reference: PitchTrack) -> tuple[Phrase, ...]:
    """The reference's voiced stretches between rests of at least ``PHRASE_GAP_S``."""
    hop = reference.hop_s
    merged: list[list[int]] = []
    for a, b in runs(reference.voiced):
        if merged and (a - merged[-1][1]) * hop < PHRASE_GAP_S:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    out: list[list[int]] = []
    for a, b in merged:  # a phrase too short to sing on its own joins the one before
        if out and (b - a) * hop < MIN_PHRASE_S:
            out[-1][1] = b
        else:
            out.append([a, b])
    t = reference.times
    return tuple(Phrase(float(t[a]) - hop / 2, float(t[b - 1]) + hop / 2) for a, b in out)


def onsets(track: PitchTrack) -> np.ndarray:
    """Note onset times (s): voiced starts after a rest, and steps between steady notes."""
    st = _semitones(track)
    hop = track.hop_s
    k = max(2, round(NOTE_S / hop))
    rest = max(1, round(MIN_REST_S / hop))
    voiced = track.voiced
    found = [a for a, _ in runs(voiced) if a == 0 or not voiced[max(0, a - rest) : a].any()]
    if len(st) > 2 * k:
        win = np.lib.stride_tricks.sliding_window_view(st, k)  # win[s] = st[s : s + k]
        before, after = win[: len(st) - 2 * k + 1], win[k:]  # around i = s + k
        steady = (before.std(axis=1) <= STEADY_ST) & (after.std(axis=1) <= STEADY_ST)
        with np.errstate(invalid="ignore"):
            step = np.abs(np.median(after, axis=1) - np.median(before, axis=1))
        step = np.where(steady & np.isfinite(step), step, 0.0)
        steps = np.zeros(len(st))
        steps[k : k + len(step)] = step
        peak = steps >= np.maximum.reduce(
            [np.roll(steps, d) for d in range(-k, k + 1)]
        )  # a local maximum within ±k frames
        taken = np.zeros(len(st) + 2 * k + 1, dtype=bool)  # frames within k of an onset
        for f in found:
            taken[f : f + 2 * k + 1] = True
        for i in np.flatnonzero((steps >= STEP_ST) & peak):
            if not taken[i + k]:  # one onset per note
                found.append(int(i))
                taken[i : i + 2 * k + 1] = True
    return np.sort(track.times[np.asarray(found, dtype=np.int64)]) if found else np.zeros(0)


def _cents(
    al: Alignment, attempt: PitchTrack, reference: PitchTrack, forgive: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per reference frame: cents error at the matched attempt frame (NaN: either unvoiced)
    and whether a whole-octave difference was forgiven there."""
    n = len(reference.times)
    smooth = max(1, round(TIME_MAP_S / reference.hop_s)) | 1
    i = np.clip(al.attempt_frames(n, smooth), 0, len(attempt.times) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 1200.0 * np.log2(attempt.f0_hz[i] / reference.f0_hz)
    octaves = np.round(np.nan_to_num(d) / 1200.0) if forgive else np.zeros(n)
    return d - 1200.0 * octaves, octaves != 0


def _accuracy(cents: np.ndarray, shifted: np.ndarray, frames: np.ndarray) -> PitchAccuracy:
    c = cents[frames]
    sung = np.isfinite(c)
    credit = np.where(sung, np.interp(np.abs(np.nan_to_num(c)), _CREDIT_CENTS, _CREDIT), 0.0)
    got = c[sung]
    return PitchAccuracy(
        score=100.0 * float(credit.mean()) if c.size else 0.0,
        median_error_cents=float(np.median(np.abs(got))) if got.size else None,
        offset_cents=float(np.median(got)) if got.size else None,
        within_50_cents=float((np.abs(got) <= 50).mean()) if got.size else 0.0,
        sung=float(sung.mean()) if c.size else 0.0,
        octave_shifted=float(shifted[frames][sung].mean()) if got.size else 0.0,
    )


def _onset_credits(
    ref_on: np.ndarray, att_on: np.ndarray, offset: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per reference onset: credit 0..1 and timing error (s, NaN unmatched); greedy, nearest first."""
    credit = np.zeros(len(ref_on))
    error = np.full(len(ref_on), np.nan)
    if not len(ref_on) or not len(att_on):
        return credit, error
    gaps = np.abs((att_on[None, :] - offset) - ref_on[:, None])
    used_r, used_a = set(), set()
    for flat in np.argsort(gaps, axis=None):
        r, a = divmod(int(flat), len(att_on))
        if gaps[r, a] > ONSET_ZERO_S:
            break
        if r in used_r or a in used_a:
            continue
        used_r.add(r)
        used_a.add(a)
        error[r] = gaps[r, a]
        credit[r] = float(np.interp(gaps[r, a], [ONSET_FULL_S, ONSET_ZERO_S], [1.0, 0.0]))
    return credit, error


def _rhythm_score(
    credit: np.ndarray, ref_on: np.ndarray, att_on: np.ndarray, offset: float
) -> float | None:
    if not len(ref_on):
        return None
    lo, hi = ref_on.min() - ONSET_ZERO_S, ref_on.max() + ONSET_ZERO_S
    inside = int(((att_on - offset >= lo) & (att_on - offset <= hi)).sum())
    return 100.0 * float(credit.sum()) / max(len(ref_on), inside)


def _worst(phrases: Sequence[PhraseScore], total: float) -> tuple[int, ...]:
    """Phrases to practise: below PHRASE_OK and worse than the learner's own average (at
    most MAX_WORST, worst first); the single worst when all are alike but not good."""
    ranked = sorted(phrases, key=lambda p: p.score)
    worse = [p.index for p in ranked if p.score < PHRASE_OK and p.score <= total - WORSE_BY]
    if not worse and ranked and ranked[0].score < PHRASE_OK:
        worse = [ranked[0].index]
    return tuple(worse[:MAX_WORST])


def score_singing(
    attempt: PitchTrack,
    reference: PitchTrack,
    phrases: Sequence[Phrase] | None = None,
    config: SingingConfig | None = None,
) -> SingingResult:
    """Score a sung attempt against the reference (see the module docstring)."""
    cfg = config or SingingConfig()
    if not reference.voiced.any():
        raise ValueError("the reference has no voiced frames")
    if not attempt.voiced.any():
        raise ValueError("the attempt has no voiced frames")
    al = align(
        attempt, reference, use_pitch=True, band_fraction=BAND_FRACTION, band_min_s=BAND_MIN_S
    )
    cents, shifted = _cents(al, attempt, reference, cfg.forgive_octave)
    i, j = al.path[:, 0], al.path[:, 1]
    both = attempt.voiced[i] & reference.voiced[j]
    offset = (
        float(np.median(attempt.times[i[both]] - reference.times[j[both]])) if both.any() else 0.0
    )
    ref_on, att_on = onsets(reference), onsets(attempt)
    credit, error = _onset_credits(ref_on, att_on, offset)
    pitch = _accuracy(cents, shifted, reference.voiced)
    rhythm_score = _rhythm_score(credit, ref_on, att_on, offset)
    rhythm = Rhythm(
        score=rhythm_score,
        reference_onsets=len(ref_on),
        matched_onsets=int(np.isfinite(error).sum()),
        median_error_ms=float(np.nanmedian(error)) * 1000 if np.isfinite(error).any() else None,
        offset_ms=offset * 1000,
    )
    scored = []
    for k, ph in enumerate(phrases if phrases is not None else phrases_from_rests(reference)):
        frames = reference.voiced & (reference.times >= ph.start_s) & (reference.times < ph.end_s)
        if not frames.any():
            continue
        acc = _accuracy(cents, shifted, frames)
        inside = (ref_on >= ph.start_s) & (ref_on < ph.end_s)
        r = _rhythm_score(credit[inside], ref_on[inside], att_on, offset) if inside.any() else None
        s = acc.score if r is None else PITCH_WEIGHT * acc.score + (1 - PITCH_WEIGHT) * r
        scored.append(PhraseScore(k, ph.start_s, ph.end_s, ph.text, s, acc.score, r,
                                  acc.median_error_cents, acc.offset_cents))  # fmt: skip
    total = (
        pitch.score
        if rhythm_score is None
        else PITCH_WEIGHT * pitch.score + (1 - PITCH_WEIGHT) * rhythm_score
    )
    worst = _worst(scored, total)
    return SingingResult(
        score=total,
        pitch=pitch,
        rhythm=rhythm,
        phrases=tuple(scored),
        worst_phrases=worst,
        feedback=singing_feedback(pitch, rhythm, tuple(scored), worst),
    )

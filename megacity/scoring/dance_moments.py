"""Moments of a dance: per-frame scores, their time bins (the moves and their ratings), and
the verdict on whether the attempt follows the reference at all.

A moment is one learner frame. Each body part seen at that moment gets the score of its
equivalent angle φ (``SCORE_ANCHORS``); the moment's own score is that of the weighted
mean error of its seen parts, the weights being how much each part moves in the reference
(``dance.part_weights``). Scores over time are plain means of these moment scores, so a
mistake costs in proportion to how long it lasted and how much of the body it involved.

The verdict ("that's another dance") reads the alignment itself:

* ``poor_moments`` P: share of moments where parts holding most of the weight score below
  ``POOR_SCORE`` (the "ok" floor);
* ``motion_agreement`` A: at the moments where the pose matches (all moments when fewer
  than a fifth do), whether the learner moves the way the reference moves at the matched
  frame — the cosine between their features' turning speeds (over ±``MOTION_LAG_S``),
  1 when every limb turns the same way at the same speed, about 0 for unrelated moves.
  A degenerate alignment (a path that pairs moves going different ways) shows here.

Evidence ``x = (1 − A) + P / 2`` (for a still reference, which has no motion to agree
with, ``x = P``); another dance when ``x ≥ OTHER_DANCE_AT``, with probability
``p = 1 / (1 + exp(−(x − OTHER_DANCE_AT) / SPREAD))`` and confidence ``max(p, 1 − p)``.
Measured on 24 synthetic choreographies (``tests/scoring/test_dance_calibration.py``):
the same dance with one or two limbs wrong for up to 4 s of 8, every joint 30° off, heavy
jitter or another tempo has ``x ≤ 0.53``; different dances ``x ≥ 0.65``; random keypoints 1.5.
"""

from __future__ import annotations

import math

import numpy as np

from megacity.scoring.dance_types import (
    RATING_NAMES,
    RATINGS,
    FrameErrors,
    Match,
    MomentScores,
    Rating,
    scores_from_errors,
)
from megacity.scoring.motion import FEATURE_PART, FEATURES, Motion
from megacity.scoring.pose import BODY_PARTS

PART_MATRIX = (FEATURE_PART[:, None] == np.arange(len(BODY_PARTS))[None, :]).astype(np.float64)
PART_SIZE = PART_MATRIX.sum(axis=0)  # features per body part
MIN_VISIBLE = 0.2  # mean feature weight below which a part counts as not seen
POOR_SCORE = RATINGS[-1][1]  # a part scoring below the "ok" floor is poor at that moment
MOTION_LAG_S = 0.1  # angular velocity over ±this many seconds: above pose jitter, below a move
OTHER_DANCE_AT = 0.6
SPREAD = 0.05


def _degrees(one_minus_cos: np.ndarray) -> np.ndarray:
    return np.asarray(np.degrees(np.arccos(np.clip(1.0 - one_minus_cos, -1.0, 1.0))))


def moment_scores(fe: FrameErrors, part_weights: np.ndarray) -> MomentScores:
    """Each learner frame's score per body part and overall (NaN where not scored)."""
    seen = (fe.den / PART_SIZE >= MIN_VISIBLE) & fe.scored[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(seen, fe.num / np.where(seen, fe.den, 1.0), 0.0)
    parts = np.where(seen, scores_from_errors(_degrees(err)), np.nan)
    w = part_weights[None, :] * seen
    total = w.sum(axis=1)
    mean_err = (w * err).sum(axis=1) / np.maximum(total, 1e-12)
    overall = np.where(total > 0, scores_from_errors(_degrees(mean_err)), np.nan)
    return MomentScores(parts, overall)


def bin_sums(values: np.ndarray, bins: np.ndarray, count: int) -> np.ndarray:
    """Sum of ``values (frames, ...)`` per bin index ``bins (frames,)`` → ``(count, ...)``."""
    flat = values.reshape(len(values), -1)
    cols = flat.shape[1]
    index = (bins[:, None] * cols + np.arange(cols)[None, :]).ravel()
    sums = np.bincount(index, weights=flat.ravel(), minlength=count * cols)
    return sums.reshape(count, *values.shape[1:])


def bin_means(values: np.ndarray, bins: np.ndarray, count: int) -> np.ndarray:
    """Mean of ``values (frames, ...)`` per bin index ``bins (frames,)``, ignoring NaN."""
    ok = np.isfinite(values)
    sums = bin_sums(np.where(ok, values, 0.0), bins, count)
    counts = bin_sums(ok.astype(np.float64), bins, count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1.0), np.nan)


_FLOORS = np.array([floor for _, floor in RATINGS])


def ratings(bin_scores: np.ndarray) -> tuple[Rating | None, ...]:
    """Each bin's move rating (``rating_of``; None where nobody was seen)."""
    index = (np.nan_to_num(bin_scores, nan=-1.0)[:, None] < _FLOORS[None, :]).sum(axis=1)
    named = [RATING_NAMES[k] for k in index.tolist()]
    return tuple(
        None if math.isnan(s) else r for s, r in zip(bin_scores.tolist(), named, strict=True)
    )


def move_counts(rated: tuple[Rating | None, ...]) -> dict[Rating, int]:
    """How many moves got each rating, best first."""
    return {name: sum(1 for r in rated if r == name) for name in RATING_NAMES}


def _angular_velocity(m: Motion) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's turning speed ``sin Δθ / Δt`` over ±MOTION_LAG_S ((frames, features),
    ≈ rad/s for the small turns of that span) and its weight; 0 at the clip's edges."""
    n = len(m.times)
    fps = (n - 1) / max(float(m.times[-1] - m.times[0]), 1e-9)
    lag = max(1, round(MOTION_LAG_S * fps))
    speed = np.zeros((n, len(FEATURES)))
    weight = np.zeros((n, len(FEATURES)))
    if n <= 2 * lag:
        return speed, weight
    x, y = m.features[:, 0::2], m.features[:, 1::2]  # (frames, features) unit-vector parts
    turn = x[: n - 2 * lag] * y[2 * lag :] - y[: n - 2 * lag] * x[2 * lag :]
    dt = np.maximum(m.times[2 * lag :] - m.times[: n - 2 * lag], 1e-9)[:, None]
    speed[lag : n - lag] = turn / dt
    w = m.feature_weights
    weight[lag : n - lag] = w[: n - 2 * lag] * w[2 * lag :]
    return speed, weight


def motion_agreement(
    attempt: Motion, reference: Motion, fe: FrameErrors, moments: np.ndarray
) -> float | None:
    """Cosine (−1..1) between the learner's and the matched reference frames' angular
    velocities over ``moments`` (learner frames); None when neither side moves there."""
    va, wa = _angular_velocity(attempt)
    vr, wr = _angular_velocity(reference)
    j = fe.ref_frame
    w = wa * wr[j] * moments[:, None]
    x, y = va, vr[j]
    energy = float((w * x * x).sum() * (w * y * y).sum())
    if energy <= 1e-12:
        return None
    return float((w * x * y).sum() / math.sqrt(energy))


def match_verdict(
    ms: MomentScores,
    part_weights: np.ndarray,
    attempt: Motion,
    reference: Motion,
    fe: FrameErrors,
    still: bool,
) -> Match:
    """Whether the attempt follows the reference at all (see the module docstring)."""
    rows = np.isfinite(ms.overall)
    seen = np.isfinite(ms.parts)
    w = part_weights[None, :] * seen
    poor_weight = (w * (np.nan_to_num(ms.parts, nan=100.0) < POOR_SCORE)).sum(axis=1)
    poor = poor_weight / np.maximum(w.sum(axis=1), 1e-12) > 0.5
    poor_moments = float(poor[rows].mean()) if rows.any() else 1.0
    well_posed = rows & ~poor
    moments = well_posed if well_posed.sum() >= 0.2 * rows.sum() else rows
    agreement = None if still else motion_agreement(attempt, reference, fe, moments)
    if agreement is None and not still:
        agreement = 0.0  # the reference moves there and the learner does not
    # A still reference has no motion to agree with: its poses alone decide.
    evidence = poor_moments if agreement is None else 1.0 - max(agreement, 0.0) + 0.5 * poor_moments
    p_other = 1.0 / (1.0 + math.exp(-(evidence - OTHER_DANCE_AT) / SPREAD))
    return Match(
        same_choreography=p_other < 0.5,
        confidence=max(p_other, 1.0 - p_other),
        poor_moments=poor_moments,
        motion_agreement=agreement,
    )

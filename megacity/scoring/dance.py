"""Dance score: how closely a learner's attempt follows the reference dance, where and when.

Pipeline: both sequences → normalised unit-vector features (``motion``) → exact banded DTW
(``dtw``) → along the warping path, per learner frame and body part, the weighted mean of
``1 − cos Δθ`` over the part's features → per moment (learner frame) a score per part and
one for the whole body (``dance_moments``) → averages over time:

* a part's score is the mean of its moment scores over the frames where it is seen;
* the overall score is the mean of the moment scores; a moment's score is that of the
  equivalent angle ``φ = arccos(1 − m)`` of ``m``, the mean error of its seen parts
  weighted ``PART_WEIGHTS × (ACTIVITY_FLOOR + activity)``, where activity is how much the
  part moves in the reference (``motion.part_activity``), by the calibrated map
  ``SCORE_ANCHORS`` (piecewise linear in φ);
* a timeline bin (one move: a beat with ``bpm``, else a second) scores the mean of its
  moments and is rated perfect / good / ok / miss (``RATINGS``).

So a mistake costs in proportion to how long it lasted; at a moment, how much it costs
depends on how much of the (moving) body it involved. Calibration (graded synthetic
dancers, ``tests/scoring/test_dance_calibration.py``): one arm wrong for 0.5 / 1 / 2 / 4 s
of 8 s ≈ 94 / 89 / 78 / 54; both arms for 2 s ≈ 75; every joint off by 10° / 20° / 30°
≈ 70 / 16 / 5; different dances 10–46; random keypoints 0. The same dance time-stretched
0.8–1.25×, drifting in tempo, shifted, scaled, at another fps or as COCO-17 ≥ 90.

The options, the score map and the result types are in ``dance_types``; moment scores,
ratings and the same-choreography verdict in ``dance_moments``; the worst moments and
the coaching lines in ``dance_feedback``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from megacity.scoring.dance_feedback import feedback, worst_moments
from megacity.scoring.dance_moments import (
    MIN_VISIBLE,
    PART_MATRIX,
    PART_SIZE,
    bin_means,
    bin_sums,
    match_verdict,
    moment_scores,
    move_counts,
    ratings,
)
from megacity.scoring.dance_types import (
    DanceConfig,
    DanceResult,
    FrameErrors,
    Match,
    MomentScores,
    PartTimeErrors,
    TimelinePoint,
    Timing,
    error_to_degrees,
)
from megacity.scoring.dtw import dtw
from megacity.scoring.motion import (
    FEATURE_DIM,
    FEATURES,
    Motion,
    extract_motion,
    part_activity,
)
from megacity.scoring.pose import BODY_PARTS, PoseSequence

# A part's weight at a moment is PART_WEIGHTS × (ACTIVITY_FLOOR + how much the part moves
# in the reference): standing upright is not part of the dance and should not earn
# points, but a still part still counts through the floor.
PART_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {**dict.fromkeys(BODY_PARTS, 1.0), "head": 0.5}
)
ACTIVITY_FLOOR = 0.1
MIN_PRESENT_FRAMES = 3
# A reference none of whose clearly seen features (mean weight at least STILL_SEEN: not
# the model's jittering guesses of hidden limbs) moves more than STILL_SPREAD (circular
# variance; 0.02 ≈ 11° of spread) is a still pose: it has no tempo or lead/lag to follow.
STILL_SPREAD = 0.02
STILL_SEEN = 0.6


@dataclass(frozen=True)
class _Aligned:
    attempt: Motion
    reference: Motion
    path: np.ndarray
    mirrored: bool
    activity: np.ndarray  # (parts,) how much each part moves in the reference, 0..1
    still: bool  # the reference is a still pose

    @property
    def part_weights(self) -> np.ndarray:
        """PART_WEIGHTS × (ACTIVITY_FLOOR + activity): each part's weight at a moment."""
        base = np.array([PART_WEIGHTS[p] for p in BODY_PARTS])
        return np.asarray(base * (ACTIVITY_FLOOR + self.activity))


def _motion(seq: PoseSequence, cfg: DanceConfig, who: str, mirror: bool = False) -> Motion:
    m = extract_motion(
        seq,
        mirror=mirror,
        visibility_low=cfg.visibility_low,
        visibility_high=cfg.visibility_high,
        max_gap_s=cfg.max_gap_s,
        frame_margin=cfg.frame_margin,
    )
    if m.present.sum() < MIN_PRESENT_FRAMES:
        raise ValueError(
            f"{who}: a person is visible in only {int(m.present.sum())} of {len(m.present)} "
            f"frames; need at least {MIN_PRESENT_FRAMES}"
        )
    return m


def _is_still(m: Motion) -> bool:
    """No clearly seen feature of ``m`` spreads more than STILL_SPREAD (circular variance)."""
    w = m.feature_weights
    u = m.features.reshape(len(w), len(FEATURES), 2)
    total = w.sum(axis=0)
    mean = (w[..., None] * u).sum(axis=0) / np.maximum(total, 1e-9)[:, None]
    spread = 1.0 - np.linalg.norm(mean, axis=1)
    seen = total / max(len(w), 1) >= STILL_SEEN
    return bool(spread[seen].max(initial=0.0) < STILL_SPREAD)


def _fps(times: np.ndarray) -> float:
    return (len(times) - 1) / max(float(times[-1] - times[0]), 1e-9)


def _radius(times: np.ndarray, cfg: DanceConfig) -> int:
    fps = _fps(times)
    frames = min(max(cfg.band_fraction * len(times), cfg.band_min_s * fps), cfg.band_max_s * fps)
    return max(1, round(frames))


def _align(attempt: PoseSequence, reference: PoseSequence, cfg: DanceConfig) -> _Aligned:
    a = _motion(attempt, cfg, "attempt")
    best: tuple[float, _Aligned] | None = None
    for mirrored in {"off": (False,), "on": (True,), "auto": (False, True)}[cfg.mirror]:
        r = _motion(reference, cfg, "reference", mirrored)
        res = dtw(
            a.features,
            r.features,
            radius=_radius(r.times, cfg),
            x_weights=np.repeat(a.feature_weights, 2, axis=1),
            y_weights=np.repeat(r.feature_weights, 2, axis=1),
            # Frames without a person cost like a clearly different pose (mean 1 − cos =
            # 0.5) wherever they are matched, so gaps neither attract nor bend the path.
            empty_cost=0.5 * FEATURE_DIM,
        )
        per_step = res.distance / len(res.path)
        if best is None or per_step < best[0]:
            best = (per_step, _Aligned(a, r, res.path, mirrored, part_activity(r), _is_still(r)))
    assert best is not None
    return best[1]


def _frame_errors(al: _Aligned) -> FrameErrors:
    a, r, path = al.attempt, al.reference, al.path
    n, m = len(a.times), len(r.times)
    diff = (a.features[path[:, 0]] - r.features[path[:, 1]]).reshape(len(path), len(FEATURES), 2)
    err = 0.5 * (diff**2).sum(axis=2)  # = 1 − cos Δθ for unit vectors
    w = a.feature_weights[path[:, 0]] * r.feature_weights[path[:, 1]]
    starts = np.searchsorted(path[:, 0], np.arange(n))  # every row appears on a DTW path
    cells = np.diff(np.append(starts, len(path)))[:, None]
    # Averaged per learner frame: a frame matched to many reference frames (the learner
    # skipped part of a move) counts once, with the mean error over what it skipped.
    num = np.add.reduceat((w * err) @ PART_MATRIX, starts, axis=0) / cells
    den = np.add.reduceat(w @ PART_MATRIX, starts, axis=0) / cells
    first_j, last_j = path[starts, 1], path[starts + cells[:, 0] - 1, 1]
    # Learner frames matched only to the reference's first (last) frame lie before (after)
    # the reference; the last (first) of such a run is a genuine match and is kept.
    outside = np.zeros(n, dtype=bool)
    lead = int(np.argmax(last_j > 0)) if (last_j > 0).any() else n
    trail = int(np.argmax(first_j[::-1] < m - 1)) if (first_j < m - 1).any() else n
    outside[: max(lead - 1, 0)] = True
    outside[n - max(trail - 1, 0) :] = True
    scored = a.present & ~outside if (a.present & ~outside).any() else a.present.copy()
    mid = path[starts + (cells[:, 0] - 1) // 2, 1]
    return FrameErrors(num, den, mid, scored)


def _pooled_deg(num: np.ndarray, den: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Error φ (degrees) per part of pooled sums over ``frames`` (count per row); NaN unseen."""
    seen = den / np.maximum(frames, 1)[..., None] / PART_SIZE >= MIN_VISIBLE
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(seen, num / np.where(seen, den, 1.0), 0.0)
    deg = np.degrees(np.arccos(np.clip(1.0 - ratio, -1.0, 1.0)))
    return np.where(seen, deg, np.nan)


def _overall_deg(part_deg: np.ndarray, weights: np.ndarray) -> float:
    """Part errors (degrees, NaN = unseen) → one φ: weighted mean of 1 − cos over seen parts."""
    seen = np.isfinite(part_deg)
    if not seen.any():
        return math.nan
    one_minus_cos = 1.0 - np.cos(np.radians(part_deg[seen]))
    return error_to_degrees(float((weights[seen] * one_minus_cos).sum() / weights[seen].sum()))


def _timing(al: _Aligned, fe: FrameErrors, match: Match) -> Timing:
    if al.still:
        return Timing(None, None, "still_pose")
    if not match.same_choreography:
        return Timing(None, None, "another_dance")
    i, j = al.path[:, 0], al.path[:, 1]
    keep = fe.scored[i] & al.reference.present[j]
    ta, tr = al.attempt.times[i[keep]], al.reference.times[j[keep]]
    if len(ta) < 2:
        return Timing(offset_ms=0.0, tempo_ratio=1.0)
    lo, hi = int(0.1 * (len(ta) - 1)), int(0.9 * (len(ta) - 1))
    span = float(tr[hi] - tr[lo])
    ratio = float(ta[hi] - ta[lo]) / span if span > 0 else 1.0
    return Timing(offset_ms=float(np.median(ta - tr)) * 1000.0, tempo_ratio=ratio)


def _heatmap(
    al: _Aligned, fe: FrameErrors, ms: MomentScores, cfg: DanceConfig
) -> tuple[PartTimeErrors, np.ndarray]:
    """Per part × bin: pooled error φ, the mean of the moments' scores, and each bin's rating;
    with the bins' overall scores (the mean of their moments)."""
    times = al.attempt.times
    bin_s = 60.0 / cfg.bpm if cfg.bpm else cfg.bin_s
    bins = np.floor((times - times[0]) / bin_s).astype(np.int64)
    count = int(bins[-1]) + 1
    parts = len(BODY_PARTS)
    sums = bin_sums(np.where(fe.scored[:, None], np.hstack([fe.num, fe.den]), 0.0), bins, count)
    frames = np.bincount(bins[fe.scored], minlength=count).astype(np.float64)
    errors = _pooled_deg(sums[:, :parts], sums[:, parts:], frames)
    errors[frames == 0] = np.nan
    means = bin_means(np.hstack([ms.parts, ms.overall[:, None]]), bins, count)
    part_scores, overall = means[:, :parts], means[:, parts]
    starts = times[0] + bin_s * np.arange(count)
    for array in (starts, errors, part_scores, overall):
        array.setflags(write=False)
    heat = PartTimeErrors(BODY_PARTS, starts, bin_s, errors.T, part_scores.T, ratings(overall))
    return heat, overall


@dataclass(frozen=True)
class _Aggregate:
    """Everything a result holds but its words: scores over time, verdict, timing."""

    frames: FrameErrors  # with ``scored`` as used (every frame seen, for another dance)
    score: float
    error_deg: float
    parts: dict[str, float | None]
    heat: PartTimeErrors
    timeline: tuple[TimelinePoint, ...]
    match: Match
    timing: Timing


def _aggregate(al: _Aligned, fe: FrameErrors, cfg: DanceConfig) -> _Aggregate:
    """Moment scores → the clip's and the parts' scores, the bins (moves), verdict, timing."""
    ms = moment_scores(fe, al.part_weights)
    match = match_verdict(ms, al.part_weights, al.attempt, al.reference, fe, al.still)
    if not match.same_choreography:
        # "Before / after the reference" comes from an alignment that means nothing for
        # another dance: every frame with a person is scored.
        fe = dataclasses.replace(fe, scored=al.attempt.present.copy())
        ms = moment_scores(fe, al.part_weights)
    rows = np.flatnonzero(fe.scored)
    frames = np.array(float(len(rows)))
    part_deg = _pooled_deg(fe.num[rows].sum(axis=0), fe.den[rows].sum(axis=0), frames)
    moments_seen = np.isfinite(ms.overall)
    if not moments_seen.any():
        raise ValueError("no body part is visible in both the attempt and the reference")
    counted = np.isfinite(ms.parts).sum(axis=0)
    part_scores = np.nansum(ms.parts, axis=0) / np.maximum(counted, 1)
    parts = {p: float(part_scores[k]) if math.isfinite(part_deg[k]) and counted[k] else None
             for k, p in enumerate(BODY_PARTS)}  # fmt: skip
    heat, bin_scores = _heatmap(al, fe, ms, cfg)
    assert heat.ratings is not None
    timeline = tuple(
        TimelinePoint(start, start + heat.bin_s, score if math.isfinite(score) else None, rating)
        for start, score, rating in zip(heat.starts_s.tolist(), bin_scores.tolist(), heat.ratings, strict=True)
    )  # fmt: skip
    return _Aggregate(fe, float(ms.overall[moments_seen].mean()),
                      _overall_deg(part_deg, al.part_weights), parts, heat, timeline, match,
                      _timing(al, fe, match))  # fmt: skip


def score_dance(
    attempt: PoseSequence, reference: PoseSequence, config: DanceConfig | None = None
) -> DanceResult:
    """Score a learner's attempt against the reference dance (0..100), with where and when."""
    cfg = config or DanceConfig()
    al = _align(attempt, reference, cfg)
    agg = _aggregate(al, _frame_errors(al), cfg)
    moments = worst_moments(al.attempt, al.reference, agg.frames, agg.heat, cfg)
    assert agg.heat.ratings is not None
    return DanceResult(
        score=agg.score,
        error_deg=agg.error_deg,
        parts=MappingProxyType(agg.parts),
        timing=agg.timing,
        timeline=agg.timeline,
        moves=MappingProxyType(move_counts(agg.heat.ratings)),
        match=agg.match,
        worst_moments=moments,
        feedback=feedback(agg.score, moments, agg.timing, cfg, agg.match, agg.timeline),
        heatmap=agg.heat,
        mirrored=al.mirrored,
        coverage=float(al.attempt.present.mean()),
    )


def part_time_errors(
    attempt: PoseSequence, reference: PoseSequence, config: DanceConfig | None = None
) -> PartTimeErrors:
    """Error φ (degrees) and score per body part × time bin of the learner's video, for heatmaps."""
    cfg = config or DanceConfig()
    al = _align(attempt, reference, cfg)
    fe = _frame_errors(al)
    heat, _ = _heatmap(al, fe, moment_scores(fe, al.part_weights), cfg)
    return heat

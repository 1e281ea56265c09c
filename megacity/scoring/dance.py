"""Dance score: how closely a learner's attempt follows the reference dance, where and when.

Pipeline: both sequences → normalised unit-vector features (``motion``) → exact banded DTW
(``dtw``) → along the warping path, per learner frame and body part, the weighted mean of
``1 − cos Δθ`` over the part's features → an equivalent angle ``φ = arccos(1 − mean)`` in
degrees → a score by the calibrated map ``SCORE_ANCHORS`` (piecewise linear in φ). Parts
combine into the overall φ with weights ``PART_WEIGHTS × (ACTIVITY_FLOOR + activity)``,
where activity is how much the part moves in the reference (``motion.part_activity``).

Calibration (synthetic dancers of ``tests/scoring/test_dance.py``, 12 s at 30 fps): the
same dance time-stretched 0.8–1.25×, shifted ±0.5 s, scaled, translated, at 24 fps, as
COCO-17, or mirrored with ``mirror="on"``: φ ≤ 2° (score ≥ 98); 2 % pose jitter: φ ≈ 4°
(97); 60 % amplitude, 150 ms late, jittered: φ ≈ 9° (89); one arm down for 2 s: φ ≈ 11°
(84, that arm 47); mirrored with mirror off: φ ≈ 27° (33); different dances: φ ≈ 24–30°
(27–40); random keypoints: φ ≈ 93° (0).

The options, the score map and the result types are in ``dance_types``; the worst
moments and the coaching lines in ``dance_feedback``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from megacity.scoring.dance_feedback import feedback, worst_moments
from megacity.scoring.dance_types import (
    DanceConfig,
    DanceResult,
    FrameErrors,
    PartTimeErrors,
    TimelinePoint,
    Timing,
    error_to_degrees,
    score_from_error,
)
from megacity.scoring.dtw import dtw
from megacity.scoring.motion import (
    FEATURE_DIM,
    FEATURE_PART,
    FEATURES,
    Motion,
    extract_motion,
    part_activity,
)
from megacity.scoring.pose import BODY_PARTS, PoseSequence

# A part's weight in the overall score is PART_WEIGHTS × (ACTIVITY_FLOOR + how much the
# part moves in the reference): standing upright is not part of the dance and should not
# earn points, but a still part still counts through the floor.
PART_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {**dict.fromkeys(BODY_PARTS, 1.0), "head": 0.5}
)
ACTIVITY_FLOOR = 0.1
MIN_PRESENT_FRAMES = 3
_MIN_VISIBLE = 0.2  # mean feature weight below which a part counts as not seen
_PART_MATRIX = (FEATURE_PART[:, None] == np.arange(len(BODY_PARTS))[None, :]).astype(np.float64)
_PART_SIZE = _PART_MATRIX.sum(axis=0)


@dataclass(frozen=True)
class _Aligned:
    attempt: Motion
    reference: Motion
    path: np.ndarray
    mirrored: bool
    part_weights: np.ndarray  # (parts,) weight of each part in the overall score


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


def _radius(times: np.ndarray, cfg: DanceConfig) -> int:
    fps = (len(times) - 1) / max(float(times[-1] - times[0]), 1e-9)
    frames = min(max(cfg.band_fraction * len(times), cfg.band_min_s * fps), cfg.band_max_s * fps)
    return max(1, round(frames))


def _part_weights(ref: Motion) -> np.ndarray:
    """PART_WEIGHTS × (ACTIVITY_FLOOR + how much each part moves in the reference)."""
    base = np.array([PART_WEIGHTS[p] for p in BODY_PARTS])
    return base * (ACTIVITY_FLOOR + part_activity(ref))


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
            best = (per_step, _Aligned(a, r, res.path, mirrored, _part_weights(r)))
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
    num = np.add.reduceat((w * err) @ _PART_MATRIX, starts, axis=0) / cells
    den = np.add.reduceat(w @ _PART_MATRIX, starts, axis=0) / cells
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


def _pooled(fe: FrameErrors, rows: np.ndarray) -> np.ndarray:
    """Per-part error φ (degrees) over learner frames ``rows``; NaN for parts not seen there."""
    num, den = fe.num[rows].sum(axis=0), fe.den[rows].sum(axis=0)
    seen = den / max(len(rows), 1) / _PART_SIZE
    out = np.full(len(BODY_PARTS), np.nan)
    for p in np.flatnonzero(seen >= _MIN_VISIBLE):
        out[p] = error_to_degrees(num[p] / den[p])
    return out


def _overall_deg(part_deg: np.ndarray, weights: np.ndarray) -> float:
    """Part errors (degrees, NaN = unseen) → one φ: weighted mean of 1 − cos over seen parts."""
    seen = np.isfinite(part_deg)
    if not seen.any():
        return math.nan
    one_minus_cos = 1.0 - np.cos(np.radians(part_deg[seen]))
    return error_to_degrees(float((weights[seen] * one_minus_cos).sum() / weights[seen].sum()))


def _timing(al: _Aligned, fe: FrameErrors) -> Timing:
    i, j = al.path[:, 0], al.path[:, 1]
    keep = fe.scored[i] & al.reference.present[j]
    ta, tr = al.attempt.times[i[keep]], al.reference.times[j[keep]]
    if len(ta) < 2:
        return Timing(offset_ms=0.0, tempo_ratio=1.0)
    lo, hi = int(0.1 * (len(ta) - 1)), int(0.9 * (len(ta) - 1))
    span = float(tr[hi] - tr[lo])
    ratio = float(ta[hi] - ta[lo]) / span if span > 0 else 1.0
    return Timing(offset_ms=float(np.median(ta - tr)) * 1000.0, tempo_ratio=ratio)


def _heatmap(al: _Aligned, fe: FrameErrors, cfg: DanceConfig) -> PartTimeErrors:
    times = al.attempt.times
    bin_s = 60.0 / cfg.bpm if cfg.bpm else cfg.bin_s
    bins = np.floor((times - times[0]) / bin_s).astype(np.int64)
    errors = np.full((len(BODY_PARTS), int(bins[-1]) + 1), np.nan)
    for b in np.unique(bins[fe.scored]):
        errors[:, b] = _pooled(fe, np.flatnonzero((bins == b) & fe.scored))
    starts = times[0] + bin_s * np.arange(errors.shape[1])
    starts.setflags(write=False)
    errors.setflags(write=False)
    return PartTimeErrors(BODY_PARTS, starts, bin_s, errors)


def score_dance(
    attempt: PoseSequence, reference: PoseSequence, config: DanceConfig | None = None
) -> DanceResult:
    """Score a learner's attempt against the reference dance (0..100), with where and when."""
    cfg = config or DanceConfig()
    al = _align(attempt, reference, cfg)
    fe = _frame_errors(al)
    part_deg = _pooled(fe, np.flatnonzero(fe.scored))
    overall = _overall_deg(part_deg, al.part_weights)
    if not math.isfinite(overall):
        raise ValueError("no body part is visible in both the attempt and the reference")
    heat = _heatmap(al, fe, cfg)
    timeline = []
    for b, start in enumerate(heat.starts_s.tolist()):
        deg = _overall_deg(heat.errors_deg[:, b], al.part_weights)
        score = score_from_error(deg) if math.isfinite(deg) else None
        timeline.append(TimelinePoint(start, start + heat.bin_s, score))
    timing = _timing(al, fe)
    moments = worst_moments(al.attempt, al.reference, fe, heat, cfg)
    parts = {p: score_from_error(d) if math.isfinite(d) else None
             for p, d in zip(BODY_PARTS, part_deg.tolist(), strict=True)}  # fmt: skip
    return DanceResult(
        score=score_from_error(overall),
        error_deg=overall,
        parts=MappingProxyType(parts),
        timing=timing,
        timeline=tuple(timeline),
        worst_moments=moments,
        feedback=feedback(score_from_error(overall), moments, timing, cfg),
        heatmap=heat,
        mirrored=al.mirrored,
        coverage=float(al.attempt.present.mean()),
    )


def part_time_errors(
    attempt: PoseSequence, reference: PoseSequence, config: DanceConfig | None = None
) -> PartTimeErrors:
    """Error φ (degrees) per body part × time bin of the learner's video, for heatmaps."""
    cfg = config or DanceConfig()
    al = _align(attempt, reference, cfg)
    return _heatmap(al, _frame_errors(al), cfg)

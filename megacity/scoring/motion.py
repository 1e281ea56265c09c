"""Per-frame pose normalisation and visibility-weighted motion features.

Each frame is moved to a hip-centre origin and divided by the torso length (shoulder
centre to hip centre), so camera distance and position drop out. Features are 2-D unit
vectors — limb directions and joint angles written as (cos, sin) — because a unit vector
difference ``|u − v|² / 2 = 1 − cos Δθ`` measures an angle whatever the dancer's size.
Depth (z) is ignored: monocular depth is too noisy to compare two videos with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from megacity.scoring import pose as P
from megacity.scoring.pose import BODY_PARTS, MIRROR_INDEX, PoseSequence

SHOULDER_MID = 33  # virtual points appended after the 33 landmarks
HIP_MID = 34
NUM_POINTS = 35
_MIN_SEGMENT = 0.08  # torso lengths: shorter (foreshortened) segments have unreliable directions
_SCALE_FLOOR = 0.5  # of the median torso: bending forward shortens the 2-D torso, not the dancer


@dataclass(frozen=True)
class Feature:
    """One unit-vector feature: a direction ``a→b`` (2 points) or the joint angle at ``b`` (3)."""

    name: str
    part: str
    points: tuple[int, ...]


def _side_features(side: str) -> tuple[Feature, ...]:
    def lm(name: str) -> int:
        return int(getattr(P, f"{side.upper()}_{name}"))

    sh, el, wr, ix = lm("SHOULDER"), lm("ELBOW"), lm("WRIST"), lm("INDEX")
    hp, kn, an, ft = lm("HIP"), lm("KNEE"), lm("ANKLE"), lm("FOOT_INDEX")
    arm, leg = f"{side}_arm", f"{side}_leg"
    return (
        Feature(f"{side}_upper_arm", arm, (sh, el)),
        Feature(f"{side}_forearm", arm, (el, wr)),
        Feature(f"{side}_hand", arm, (wr, ix)),
        Feature(f"{side}_elbow_angle", arm, (sh, el, wr)),
        Feature(f"{side}_shoulder_angle", arm, (hp, sh, el)),
        Feature(f"{side}_thigh", leg, (hp, kn)),
        Feature(f"{side}_shin", leg, (kn, an)),
        Feature(f"{side}_foot", leg, (an, ft)),
        Feature(f"{side}_knee_angle", leg, (hp, kn, an)),
        Feature(f"{side}_hip_angle", leg, (sh, hp, kn)),
    )


FEATURES: tuple[Feature, ...] = (
    Feature("head_direction", "head", (SHOULDER_MID, P.NOSE)),
    Feature("ear_line", "head", (P.RIGHT_EAR, P.LEFT_EAR)),
    Feature("torso_direction", "torso", (HIP_MID, SHOULDER_MID)),
    Feature("shoulder_line", "torso", (P.RIGHT_SHOULDER, P.LEFT_SHOULDER)),
    Feature("hip_line", "torso", (P.RIGHT_HIP, P.LEFT_HIP)),
    *_side_features("left"),
    *_side_features("right"),
)
FEATURE_DIM = 2 * len(FEATURES)  # columns of Motion.features
FEATURE_PART: np.ndarray = np.array([BODY_PARTS.index(f.part) for f in FEATURES])


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class Motion:
    """Normalised poses and features of one sequence; arrays are indexed by frame.

    ``points (frames, 35, 2)``: torso-length units, hip-centre origin, y down; points 33
    and 34 are the shoulder and hip centres. ``weights (frames, 35)``: 0..1 confidence.
    ``features (frames, FEATURE_DIM)``: (x, y) of each unit vector in FEATURES order;
    ``feature_weights (frames, len(FEATURES))``. Frames without a person have
    ``present == False``, NaN points and zero weights.
    """

    times: np.ndarray
    points: np.ndarray
    weights: np.ndarray
    present: np.ndarray
    features: np.ndarray
    feature_weights: np.ndarray


def landmark_weights(visibility: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map visibility to a 0..1 weight: 0 at or below ``low``, 1 at or above ``high``."""
    w = np.clip((np.nan_to_num(visibility, nan=0.0) - low) / max(high - low, 1e-9), 0.0, 1.0)
    return np.asarray(w, dtype=np.float64)


def fill_short_gaps(
    xy: np.ndarray, weights: np.ndarray, times: np.ndarray, max_gap_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate landmarks missing (weight 0) for at most ``max_gap_s`` seconds."""
    frames, count = weights.shape
    valid = weights > 0
    idx = np.arange(frames)[:, None]
    prev = np.maximum.accumulate(np.where(valid, idx, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(valid, idx, frames)[::-1], axis=0)[::-1]
    fill = ~valid & (prev >= 0) & (nxt < frames)
    if not fill.any():
        return xy, weights
    p, n = np.clip(prev, 0, frames - 1), np.clip(nxt, 0, frames - 1)
    tp, tn = times[p], times[n]
    fill &= tn - tp <= max_gap_s
    alpha = np.where(fill, (times[:, None] - tp) / np.where(fill, tn - tp, 1.0), 0.0)
    cols = np.arange(count)[None, :]
    xy_i = xy[p, cols] * (1 - alpha[..., None]) + xy[n, cols] * alpha[..., None]
    w_i = weights[p, cols] * (1 - alpha) + weights[n, cols] * alpha
    return np.where(fill[..., None], xy_i, xy), np.where(fill, w_i, weights)


def _centre(xy: np.ndarray, w: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    # Midpoint when both sides are seen; the one seen side otherwise (side-on dancers).
    seen_a, seen_b = w[:, a] > 0, w[:, b] > 0
    mid = np.where(seen_a[:, None], xy[:, a], xy[:, b])
    mid = np.where((seen_a & seen_b)[:, None], (xy[:, a] + xy[:, b]) / 2, mid)
    return mid, np.maximum(w[:, a], w[:, b])


def normalize_frames(xy: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hip-centre origin, torso-length units: ``(frames, 33, 2)`` → points (frames, 35, 2), present."""
    shoulders, w_s = _centre(xy, weights, P.LEFT_SHOULDER, P.RIGHT_SHOULDER)
    hips, w_h = _centre(xy, weights, P.LEFT_HIP, P.RIGHT_HIP)
    torso = np.linalg.norm(shoulders - hips, axis=1)
    present = (w_s > 0) & (w_h > 0) & np.isfinite(torso) & (torso > 1e-9)
    floor = _SCALE_FLOOR * float(np.median(torso[present])) if present.any() else 1.0
    scale = np.maximum(np.where(present, torso, 1.0), floor)
    pts = np.concatenate([xy, shoulders[:, None], hips[:, None]], axis=1)
    pts = (pts - hips[:, None]) / scale[:, None, None]
    pts[~present] = np.nan
    return pts, present


def _unit_rows(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    length = np.linalg.norm(v, axis=-1)
    ok = np.isfinite(length) & (length > 1e-12)
    u = np.where(ok[..., None], v / np.where(ok, length, 1.0)[..., None], 0.0)
    return u, np.where(ok, length, 0.0)


def pose_features(points: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-vector features ``(frames, FEATURE_DIM)`` and their weights ``(frames, features)``."""
    frames = points.shape[0]
    feats = np.zeros((frames, len(FEATURES), 2))
    fw = np.zeros((frames, len(FEATURES)))
    for k, f in enumerate(FEATURES):
        if len(f.points) == 2:
            u, length = _unit_rows(points[:, f.points[1]] - points[:, f.points[0]])
        else:
            u1, l1 = _unit_rows(points[:, f.points[0]] - points[:, f.points[1]])
            u2, l2 = _unit_rows(points[:, f.points[2]] - points[:, f.points[1]])
            # (cos, sin) of the signed angle from the first limb to the second.
            cos = (u1 * u2).sum(axis=1)
            sin = u1[:, 0] * u2[:, 1] - u1[:, 1] * u2[:, 0]
            u, _ = _unit_rows(np.stack([cos, sin], axis=1))
            length = np.minimum(l1, l2)
        conf = np.min(weights[:, list(f.points)], axis=1)
        feats[:, k] = u
        fw[:, k] = np.where(length > 0, conf * np.clip(length / _MIN_SEGMENT, 0.0, 1.0), 0.0)
    return feats.reshape(frames, FEATURE_DIM), fw


def extract_motion(
    seq: PoseSequence,
    *,
    mirror: bool = False,
    visibility_low: float = 0.4,
    visibility_high: float = 0.75,
    max_gap_s: float = 0.5,
    frame_margin: float | None = None,
) -> Motion:
    """Normalise a pose sequence and compute its features; ``mirror`` swaps left/right and flips x.

    With ``frame_margin`` (image-normalised coordinates only), a landmark outside the frame
    by more than that margin counts as unseen: pose models guess off-frame limbs (a dancer
    filmed from the waist up still gets knees), and a guess is not a movement to score.
    """
    kp = seq.keypoints
    xy = kp[:, :, :2] * np.array([seq.aspect_ratio, 1.0])
    w = landmark_weights(kp[:, :, 3], visibility_low, visibility_high)
    w = np.where(np.isnan(xy).any(axis=2), 0.0, w)
    if frame_margin is not None:
        with np.errstate(invalid="ignore"):
            lo, hi = -frame_margin, 1.0 + frame_margin
            inside = ((kp[:, :, :2] >= lo) & (kp[:, :, :2] <= hi)).all(axis=2)
        w = np.where(inside, w, 0.0)
    if mirror:
        xy = xy[:, list(MIRROR_INDEX)] * np.array([-1.0, 1.0])
        w = w[:, list(MIRROR_INDEX)]
    xy, w = fill_short_gaps(xy, w, seq.times, max_gap_s)
    points, present = normalize_frames(xy, w)
    _, w_s = _centre(xy, w, P.LEFT_SHOULDER, P.RIGHT_SHOULDER)
    _, w_h = _centre(xy, w, P.LEFT_HIP, P.RIGHT_HIP)
    weights = np.concatenate([w, w_s[:, None], w_h[:, None]], axis=1)
    weights[~present] = 0.0
    feats, fw = pose_features(np.nan_to_num(points), weights)
    return Motion(seq.times, points, weights, present, feats, fw)


def part_activity(m: Motion) -> np.ndarray:
    """How much each body part moves, 0 (still) .. 1: mean circular variance of its features."""
    w = m.feature_weights
    u = m.features.reshape(len(w), len(FEATURES), 2)
    total = w.sum(axis=0)
    mean = (w[..., None] * u).sum(axis=0) / np.maximum(total, 1e-9)[:, None]
    spread = 1.0 - np.linalg.norm(mean, axis=1)
    parts = FEATURE_PART[:, None] == np.arange(len(BODY_PARTS))[None, :]
    return np.asarray((total * spread) @ parts / np.maximum(total @ parts, 1e-9))


# Limb chains for describing an error: root, middle joint, end, and the two points whose
# direction is "outwards" for that side (left parts point from the right side to the left).
_LIMBS: dict[str, tuple[int, int, int, int, int]] = {
    "left_arm": (P.LEFT_SHOULDER, P.LEFT_ELBOW, P.LEFT_WRIST, P.LEFT_SHOULDER, P.RIGHT_SHOULDER),
    "right_arm": (
        P.RIGHT_SHOULDER,
        P.RIGHT_ELBOW,
        P.RIGHT_WRIST,
        P.RIGHT_SHOULDER,
        P.LEFT_SHOULDER,
    ),
    "left_leg": (P.LEFT_HIP, P.LEFT_KNEE, P.LEFT_ANKLE, P.LEFT_HIP, P.RIGHT_HIP),
    "right_leg": (P.RIGHT_HIP, P.RIGHT_KNEE, P.RIGHT_ANKLE, P.RIGHT_HIP, P.LEFT_HIP),
}
_SHIFT_UNIT = 0.25  # torso lengths (~12 cm) counted as one unit of "too low / too wide"
_BEND_UNIT = 25.0  # degrees of elbow/knee angle counted as one unit of "too bent"
_LEAN_UNIT = 0.25  # sideways component of the torso/head direction (~15°)


# issue → (what is wrong EN, KO; advice EN, KO); {n} English noun, {o}/{s} Korean noun
# with object/subject particle (pose.PART_NAMES).
ISSUE_PHRASES: dict[str, tuple[str, str, str, str]] = {
    "too_low": ("{n} too low", "{s} 너무 낮아요", "Raise your {n} higher", "{o} 더 높이 드세요"),
    "too_high": ("{n} too high", "{s} 너무 높아요", "Lower your {n}", "{o} 더 낮게 내리세요"),
    "too_wide": ("{n} too far out", "{s} 몸에서 너무 멀어요",
                 "Keep your {n} closer to your body", "{o} 몸 쪽으로 더 모으세요"),
    "too_narrow": ("{n} too close to the body", "{s} 몸에 너무 붙어 있어요",
                   "Reach your {n} further out", "{o} 더 바깥으로 뻗으세요"),
    "too_bent": ("{n} too bent", "{s} 너무 굽어 있어요", "Straighten your {n} more", "{o} 더 곧게 펴세요"),
    "too_straight": ("{n} too straight", "{s} 너무 펴져 있어요", "Bend your {n} more", "{o} 더 구부리세요"),
    "lean_left": ("{n} leaning too far left", "{s} 왼쪽으로 너무 기울었어요",
                  "Tilt your {n} more to the right", "{o} 오른쪽으로 더 기울이세요"),
    "lean_right": ("{n} leaning too far right", "{s} 오른쪽으로 너무 기울었어요",
                   "Tilt your {n} more to the left", "{o} 왼쪽으로 더 기울이세요"),
    "off": ("{n} off the reference", "{s} 레퍼런스와 달라요",
            "Follow the reference's {n} movement more closely", "{o} 레퍼런스처럼 움직여 보세요"),
}  # fmt: skip


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else 0.0


def _interior_deg(p: np.ndarray, a: int, b: int, c: int) -> np.ndarray:
    u1, _ = _unit_rows(p[:, a] - p[:, b])
    u2, _ = _unit_rows(p[:, c] - p[:, b])
    return np.asarray(np.degrees(np.arccos(np.clip((u1 * u2).sum(axis=1), -1.0, 1.0))))


def _lateral(p: np.ndarray, base: int, tip: int) -> np.ndarray:
    direction, _ = _unit_rows(p[:, tip] - p[:, base])
    left, _ = _unit_rows(p[:, P.LEFT_SHOULDER] - p[:, P.RIGHT_SHOULDER])
    return np.asarray((direction * left).sum(axis=1))


def part_deviation(attempt: np.ndarray, reference: np.ndarray, part: str) -> tuple[str, float]:
    """What is wrong with ``part`` over matched frames ``(k, 35, 2)``: (issue, strength in units ≥ 0).

    Issues: too_low, too_high, too_wide, too_narrow, too_bent, too_straight (arms and legs),
    lean_left, lean_right (torso and head, the learner's own left/right), or "off" when no
    single direction explains the error (strength below 0.5 units).
    """
    if part in ("head", "torso"):
        base, tip = (SHOULDER_MID, P.NOSE) if part == "head" else (HIP_MID, SHOULDER_MID)
        lean = _mean(_lateral(attempt, base, tip) - _lateral(reference, base, tip)) / _LEAN_UNIT
        candidates = [("lean_left" if lean > 0 else "lean_right", abs(lean))]
    else:
        root, mid, end, out_a, out_b = _LIMBS[part]
        rel_a, rel_r = attempt[:, end] - attempt[:, root], reference[:, end] - reference[:, root]
        out_att, _ = _unit_rows(attempt[:, out_a] - attempt[:, out_b])
        out_ref, _ = _unit_rows(reference[:, out_a] - reference[:, out_b])
        dy = _mean(rel_a[:, 1] - rel_r[:, 1]) / _SHIFT_UNIT  # y grows downwards
        dx = _mean((rel_a * out_att).sum(axis=1) - (rel_r * out_ref).sum(axis=1)) / _SHIFT_UNIT
        bend = _interior_deg(attempt, root, mid, end) - _interior_deg(reference, root, mid, end)
        db = _mean(bend) / _BEND_UNIT
        candidates = [
            ("too_low" if dy > 0 else "too_high", abs(dy)),
            ("too_wide" if dx > 0 else "too_narrow", abs(dx)),
            ("too_straight" if db > 0 else "too_bent", abs(db)),
        ]
    issue, strength = max(candidates, key=lambda c: c[1])
    return (issue if strength >= 0.5 else "off"), strength

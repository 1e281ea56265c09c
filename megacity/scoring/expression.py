"""Facial expression over time from face blendshapes and head pose (pure: arrays in, dataclasses out).

Input is what a face landmarker gives per sampled frame: ARKit-style blendshape scores
0..1 (``mouthSmileLeft``, ``browInnerUp``, ``jawOpen``, ``eyeBlinkLeft`` …) and the 4×4
facial transformation matrix, with rows of NaN where no face was found. Output is what a
coach can cite: how often and how strongly each expression showed, the time segments
where it did, blinks per minute, and the head's pose (yaw, pitch, roll in degrees).

Expressions are means of their blendshapes (left and right together); a frame shows an
expression when that mean passes its threshold. Thresholds were read off MediaPipe's
output: a plain smile (the tests' astronaut photo) gives mouthSmile ≈ 0.9, a neutral face
< 0.1; a blink closes eyeBlink to > 0.5 for one or two frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

EXPRESSIONS: dict[str, tuple[str, ...]] = {
    "smile": ("mouthSmileLeft", "mouthSmileRight"),
    "brow_raise": ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"),
    "frown": ("browDownLeft", "browDownRight", "mouthFrownLeft", "mouthFrownRight"),
    "jaw_open": ("jawOpen",),
    "blink": ("eyeBlinkLeft", "eyeBlinkRight"),
}
BLENDSHAPE_NAMES: tuple[str, ...] = tuple(sorted({n for ns in EXPRESSIONS.values() for n in ns}))
THRESHOLDS: dict[str, float] = {
    "smile": 0.5,
    "brow_raise": 0.4,
    "frown": 0.35,
    "jaw_open": 0.35,
    "blink": 0.5,
}
MIN_BLINK_SPAN_S = 2.0  # shorter clips (and photos) report no blink rate


@dataclass(frozen=True)
class ExpressionStat:
    """One expression over the frames with a face: mean and peak strength (0..1), and the
    share of those frames (0..1) where it passed its threshold."""

    mean: float
    peak: float
    share: float


@dataclass(frozen=True)
class ExpressionSegment:
    """A stretch (s, from the first sampled frame's clock) where an expression showed."""

    expression: str
    start_s: float
    end_s: float
    peak: float


@dataclass(frozen=True)
class HeadPose:
    """Mean head angles and their spread (max − min), degrees: yaw turns, pitch nods, roll tilts."""

    yaw: float
    pitch: float
    roll: float
    yaw_range: float
    pitch_range: float
    roll_range: float


@dataclass(frozen=True)
class ExpressionSummary:
    """Expression over a clip or a set of photos (see the module docstring)."""

    frames: int
    face_frames: int
    presence: float  # face_frames / frames
    expressions: dict[str, ExpressionStat]
    segments: tuple[ExpressionSegment, ...]
    head: HeadPose | None
    blinks_per_min: float | None
    expressiveness: float  # 0..1: mean of smile, brow raise, frown and jaw peaks

    def to_dict(self) -> dict[str, Any]:
        return _rounded(asdict(self))


def head_angles(matrices: np.ndarray) -> np.ndarray:
    """``(n, 3)`` yaw, pitch, roll (degrees) of ``(n, 4, 4)`` transformation matrices.

    The rotation is read as R = Ry(yaw)·Rx(pitch)·Rz(roll); a mirrored face negates yaw
    and roll. NaN rows stay NaN.
    """
    r = np.asarray(matrices, dtype=np.float64)[:, :3, :3]
    pitch = np.arcsin(np.clip(-r[:, 1, 2], -1.0, 1.0))
    yaw = np.arctan2(r[:, 0, 2], r[:, 2, 2])
    roll = np.arctan2(r[:, 1, 0], r[:, 1, 1])
    return np.degrees(np.stack([yaw, pitch, roll], axis=1))


def summarize(
    times: np.ndarray,
    blendshapes: np.ndarray,
    names: Sequence[str],
    matrices: np.ndarray | None = None,
) -> ExpressionSummary:
    """Summarise ``(n,)`` times (s), ``(n, k)`` blendshape scores named by `names` and
    optional ``(n, 4, 4)`` matrices; a NaN row is a frame without a face."""
    times = np.asarray(times, dtype=np.float64)
    scores = np.asarray(blendshapes, dtype=np.float64)
    if scores.ndim != 2 or scores.shape != (times.size, len(names)):
        raise ValueError("blendshapes must be (frames, len(names)) for (frames,) times")
    present = np.asarray(~np.isnan(scores).any(axis=1), dtype=bool)
    column = {name: i for i, name in enumerate(names)}
    face = int(present.sum())
    stats: dict[str, ExpressionStat] = {}
    segments: list[ExpressionSegment] = []
    series: dict[str, np.ndarray] = {}
    for expression, members in EXPRESSIONS.items():
        cols = [column[m] for m in members if m in column]
        if not cols or not face:
            continue
        values = scores[:, cols].mean(axis=1)
        series[expression] = values
        shown = present & (values >= THRESHOLDS[expression])
        seen = values[present]
        stats[expression] = ExpressionStat(
            float(seen.mean()), float(seen.max()), float(shown.sum() / face)
        )
        if expression != "blink":
            segments.extend(_segments(expression, times, values, shown))
    segments.sort(key=lambda s: (s.start_s, s.expression))
    head = _head(matrices, present) if matrices is not None else None
    return ExpressionSummary(
        frames=int(times.size),
        face_frames=face,
        presence=face / times.size if times.size else 0.0,
        expressions=stats,
        segments=tuple(segments),
        head=head,
        blinks_per_min=_blink_rate(times, series.get("blink"), present),
        expressiveness=_expressiveness(stats),
    )


def _segments(
    expression: str, times: np.ndarray, values: np.ndarray, shown: np.ndarray
) -> list[ExpressionSegment]:
    out: list[ExpressionSegment] = []
    start: int | None = None
    for i, on in enumerate([*shown.tolist(), False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            out.append(
                ExpressionSegment(
                    expression,
                    float(times[start]),
                    float(times[i - 1]),
                    float(np.nanmax(values[start:i])),
                )
            )
            start = None
    return out


def _head(matrices: np.ndarray, present: np.ndarray) -> HeadPose | None:
    m = np.asarray(matrices, dtype=np.float64)
    ok = present & ~np.isnan(m).reshape(len(m), -1).any(axis=1)
    if not ok.any():
        return None
    angles = head_angles(m[ok])
    mean = angles.mean(axis=0)
    spread = angles.max(axis=0) - angles.min(axis=0)
    return HeadPose(*(float(v) for v in (*mean, *spread)))


def _blink_rate(times: np.ndarray, blink: np.ndarray | None, present: np.ndarray) -> float | None:
    if blink is None or times.size < 2:
        return None
    span = float(times[present].max() - times[present].min()) if present.any() else 0.0
    if span < MIN_BLINK_SPAN_S:
        return None
    closed = present & (blink >= THRESHOLDS["blink"])
    onsets = int(np.sum(closed[1:] & ~closed[:-1]) + (1 if closed[0] else 0))
    return onsets * 60.0 / span


def _expressiveness(stats: dict[str, ExpressionStat]) -> float:
    peaks = [stats[e].peak for e in ("smile", "brow_raise", "frown", "jaw_open") if e in stats]
    return float(np.mean(peaks)) if peaks else 0.0


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


__all__ = [
    "BLENDSHAPE_NAMES",
    "EXPRESSIONS",
    "THRESHOLDS",
    "ExpressionSegment",
    "ExpressionStat",
    "ExpressionSummary",
    "HeadPose",
    "head_angles",
    "summarize",
]

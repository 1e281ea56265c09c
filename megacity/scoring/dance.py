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
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from megacity.scoring.dtw import dtw
from megacity.scoring.motion import (
    FEATURE_DIM,
    FEATURE_PART,
    FEATURES,
    ISSUE_PHRASES,
    Motion,
    extract_motion,
    part_activity,
    part_deviation,
)
from megacity.scoring.pose import BODY_PARTS, PART_NAMES, PoseSequence

# (φ degrees, score), piecewise linear. φ is the overall equivalent angle; a few degrees
# are pose-estimation jitter and frame quantisation, 10–15° a recognisable copy with
# sloppy limbs, 20–25° the level of an unrelated dance built from similar moves, 90°
# random poses. Calibrated on the synthetic dancers of tests/scoring/test_dance.py.
SCORE_ANCHORS: tuple[tuple[float, float], ...] = (
    (0.0, 100.0), (5.0, 96.0), (10.0, 88.0), (15.0, 74.0), (20.0, 50.0), (25.0, 36.0),
    (30.0, 27.0), (40.0, 16.0), (50.0, 9.0), (65.0, 3.0), (90.0, 0.0),
)  # fmt: skip
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

Mirror = Literal["off", "on", "auto"]


@dataclass(frozen=True)
class DanceConfig:
    """Scoring options; times in seconds, ``bpm`` switches the timeline to one point per beat.

    ``mirror``: "on" compares with the mirrored reference (a learner copying a mirrored
    video), "auto" tries both and keeps the better, "off" compares as filmed.
    """

    mirror: Mirror = "off"
    band_fraction: float = 0.1  # DTW band radius: this share of the reference's frames,
    band_min_s: float = 2.0  # but at least this many seconds (learner's start offset)
    band_max_s: float = 10.0  # and at most this many (memory: frames × band)
    bin_s: float = 1.0  # timeline / heatmap bin
    bpm: float | None = None  # if given, bins are beats (60 / bpm s) from the first frame
    # Landmark weight ramps from 0 at visibility_low to 1 at visibility_high. MediaPipe
    # guesses occluded and off-camera limbs at visibility ~0.2-0.4 (measured on the
    # tests' real photo): those guesses jitter, and must not be scored as moves.
    visibility_low: float = 0.4
    visibility_high: float = 0.75
    max_gap_s: float = 0.5  # interpolate landmarks missing up to this long
    # Landmarks further than this outside the frame are unseen (image-normalised input);
    # None for keypoints in another coordinate system.
    frame_margin: float | None = 0.05
    moment_min_error_deg: float = 35.0  # part-bin error φ from which a moment is "worst"
    max_moments: int = 5
    max_feedback: int = 3  # advice sentences, besides the summary and timing lines
    timing_tolerance_ms: float = 150.0  # offsets within this are "on time"

    def __post_init__(self) -> None:
        bad = [
            (self.mirror not in ("off", "on", "auto"), "mirror must be 'off', 'on' or 'auto'"),
            (not 0 <= self.band_fraction <= 1, "band_fraction must be within 0..1"),
            (not 0 <= self.band_min_s <= self.band_max_s <= 600, "need 0 <= band_min_s <= band_max_s <= 600"),
            (not 0.1 <= self.bin_s <= 60, "bin_s must be within 0.1..60"),
            (self.bpm is not None and not 20 <= self.bpm <= 400, "bpm must be within 20..400"),
            (not 0 <= self.visibility_low < self.visibility_high <= 1, "need 0 <= visibility_low < visibility_high <= 1"),
            (not 0 <= self.max_gap_s <= 5, "max_gap_s must be within 0..5"),
            (self.frame_margin is not None and not 0 <= self.frame_margin <= 1, "frame_margin must be within 0..1"),
            (not 0 <= self.moment_min_error_deg <= 90, "moment_min_error_deg must be within 0..90"),
            (not 0 <= self.max_moments <= 50, "max_moments must be within 0..50"),
            (not 0 <= self.max_feedback <= 50, "max_feedback must be within 0..50"),
            (not self.timing_tolerance_ms >= 0, "timing_tolerance_ms must be >= 0"),
        ]  # fmt: skip
        for failed, message in bad:
            if failed:
                raise ValueError(f"DanceConfig: {message}")


@dataclass(frozen=True)
class Timing:
    """Learner's offset (ms, > 0 = late behind the reference) and tempo ratio (> 1 = slower)."""

    offset_ms: float
    tempo_ratio: float


@dataclass(frozen=True)
class TimelinePoint:
    """Score of one time bin of the learner's video (s); None where no person was seen."""

    start_s: float
    end_s: float
    score: float | None


@dataclass(frozen=True)
class WorstMoment:
    """A stretch of the learner's video (s) where one body part was far off, and how.

    ``peak_s`` is the learner's frame where the part was furthest off, ``reference_s`` the
    reference frame the DTW matched to it (for drawing both poses side by side).
    """

    start_s: float
    end_s: float
    part: str
    issue: str
    score: float
    en: str
    ko: str
    peak_s: float
    reference_s: float


@dataclass(frozen=True)
class Feedback:
    """One short coaching sentence in English and Korean."""

    en: str
    ko: str
    part: str | None = None
    time_s: float | None = None


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class PartTimeErrors:
    """Error φ (degrees) per body part × time bin: ``errors_deg (parts, bins)``, NaN = unseen."""

    parts: tuple[str, ...]
    starts_s: np.ndarray
    bin_s: float
    errors_deg: np.ndarray


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class DanceResult:
    """Overall score 0..100, per-part scores (None = part not visible) and their explanation."""

    score: float
    error_deg: float
    parts: Mapping[str, float | None]
    timing: Timing
    timeline: tuple[TimelinePoint, ...]
    worst_moments: tuple[WorstMoment, ...]
    feedback: tuple[Feedback, ...]
    heatmap: PartTimeErrors
    mirrored: bool
    coverage: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: plain floats (3 decimals), lists, None for NaN / missing values."""
        out: dict[str, Any] = _plain(self)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return round(float(value), 3) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def error_to_degrees(mean_one_minus_cos: float) -> float:
    """Equivalent angle (degrees) of a mean ``1 − cos Δθ``: 0 → 0°, 1 → 90°."""
    return math.degrees(math.acos(min(1.0, max(-1.0, 1.0 - mean_one_minus_cos))))


def score_from_error(error_deg: float) -> float:
    """Score 0..100 from an equivalent angular error in degrees (``SCORE_ANCHORS``)."""
    xs, ys = zip(*SCORE_ANCHORS, strict=True)
    return float(np.interp(error_deg, xs, ys))


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


@dataclass(frozen=True)
class _FrameErrors:
    num: np.ndarray  # (frames, parts) mean over the frame's path cells of Σ weight·(1 − cos)
    den: np.ndarray  # (frames, parts) mean over the frame's path cells of Σ weight
    ref_frame: np.ndarray  # (frames,) reference frame matched in the middle of those cells
    scored: np.ndarray  # (frames,) person seen, and not before/after the reference


def _frame_errors(al: _Aligned) -> _FrameErrors:
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
    return _FrameErrors(num, den, mid, scored)


def _pooled(fe: _FrameErrors, rows: np.ndarray) -> np.ndarray:
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


def _timing(al: _Aligned, fe: _FrameErrors) -> Timing:
    i, j = al.path[:, 0], al.path[:, 1]
    keep = fe.scored[i] & al.reference.present[j]
    ta, tr = al.attempt.times[i[keep]], al.reference.times[j[keep]]
    if len(ta) < 2:
        return Timing(offset_ms=0.0, tempo_ratio=1.0)
    lo, hi = int(0.1 * (len(ta) - 1)), int(0.9 * (len(ta) - 1))
    span = float(tr[hi] - tr[lo])
    ratio = float(ta[hi] - ta[lo]) / span if span > 0 else 1.0
    return Timing(offset_ms=float(np.median(ta - tr)) * 1000.0, tempo_ratio=ratio)


def _heatmap(al: _Aligned, fe: _FrameErrors, cfg: DanceConfig) -> PartTimeErrors:
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


def _clock(t: float) -> str:
    s = max(0, int(t))
    return f"{s // 60}:{s % 60:02d}"


def _runs(row: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Consecutive bins ``[start, end)`` whose error is at least ``threshold``."""
    bad = np.concatenate([[False], np.nan_to_num(row, nan=0.0) >= threshold, [False]])
    edges = np.flatnonzero(np.diff(bad.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _worst_moments(
    al: _Aligned, fe: _FrameErrors, heat: PartTimeErrors, cfg: DanceConfig
) -> tuple[WorstMoment, ...]:
    found: list[tuple[float, WorstMoment]] = []
    times = al.attempt.times
    for p, part in enumerate(BODY_PARTS):
        for b0, b1 in _runs(heat.errors_deg[p], cfg.moment_min_error_deg):
            start, end = float(heat.starts_s[b0]), float(heat.starts_s[b1 - 1]) + heat.bin_s
            rows = np.flatnonzero((times >= start) & (times < end) & fe.scored)
            worst = float(np.nanmax(heat.errors_deg[p, b0:b1]))
            ref_points = al.reference.points[fe.ref_frame[rows]]
            issue, _ = part_deviation(al.attempt.points[rows], ref_points, part)
            noun, _, subj = PART_NAMES[part]
            what_en, what_ko, _, _ = ISSUE_PHRASES[issue]
            end = min(end, float(times[-1]))
            with np.errstate(invalid="ignore", divide="ignore"):
                frame_err = fe.num[rows, p] / fe.den[rows, p]
            peak = (
                int(rows[np.nanargmax(frame_err)]) if np.isfinite(frame_err).any() else int(rows[0])
            )
            moment = WorstMoment(start, end, part, issue, score_from_error(worst),
                                 what_en.format(n=noun), what_ko.format(s=subj), float(times[peak]),
                                 float(al.reference.times[fe.ref_frame[peak]]))  # fmt: skip
            found.append((worst * (b1 - b0) ** 0.5, moment))
    found.sort(key=lambda x: -x[0])  # long and bad first
    return tuple(m for _, m in found[: cfg.max_moments])


_SUMMARY = (
    (90.0, "Great job! Your moves match the reference closely.",
     "훌륭해요! 레퍼런스 동작과 거의 같아요."),
    (70.0, "Good work - a few moments still need polish.", "좋아요! 몇 군데만 더 다듬어 보세요."),
    (0.0, "Keep practising - focus on the moments below.", "계속 연습해 봐요. 아래 구간에 집중해 보세요."),
)  # fmt: skip


def _feedback(
    score: float, moments: tuple[WorstMoment, ...], timing: Timing, cfg: DanceConfig
) -> tuple[Feedback, ...]:
    lines = [next(Feedback(en, ko) for floor, en, ko in _SUMMARY if score >= floor)]
    said: set[tuple[str, str]] = set()
    for m in moments:
        if len(said) >= cfg.max_feedback or (m.part, m.issue) in said:
            continue
        said.add((m.part, m.issue))
        noun, obj, _ = PART_NAMES[m.part]
        _, _, advice_en, advice_ko = ISSUE_PHRASES[m.issue]
        at = _clock(m.start_s)
        lines.append(Feedback(f"{advice_en.format(n=noun)} at {at}.",
                              f"{at}에 {advice_ko.format(o=obj)}.", m.part, m.start_s))  # fmt: skip
    lag = timing.offset_ms / 1000.0
    if lag * 1000.0 > cfg.timing_tolerance_ms:
        lines.append(Feedback(f"You are {lag:.1f} s behind the reference - move a little earlier.",
                              f"레퍼런스보다 {lag:.1f}초 늦어요. 조금 더 빨리 움직이세요."))  # fmt: skip
    elif -lag * 1000.0 > cfg.timing_tolerance_ms:
        lines.append(Feedback(f"You are {-lag:.1f} s ahead of the reference - wait for the beat.",
                              f"레퍼런스보다 {-lag:.1f}초 빨라요. 박자를 기다렸다가 움직이세요."))  # fmt: skip
    return tuple(lines)


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
    moments = _worst_moments(al, fe, heat, cfg)
    parts = {p: score_from_error(d) if math.isfinite(d) else None
             for p, d in zip(BODY_PARTS, part_deg.tolist(), strict=True)}  # fmt: skip
    return DanceResult(
        score=score_from_error(overall),
        error_deg=overall,
        parts=MappingProxyType(parts),
        timing=timing,
        timeline=tuple(timeline),
        worst_moments=moments,
        feedback=_feedback(score_from_error(overall), moments, timing, cfg),
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

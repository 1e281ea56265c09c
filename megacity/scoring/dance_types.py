"""The dance score's data: its options, its score map (φ → 0..100) and what a result holds.

``scoring.dance`` computes these, ``scoring.dance_feedback`` puts them into words; both
import from here, so neither imports the other's internals.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

# (φ degrees, score), piecewise linear, applied to one moment (a learner frame): φ is its
# equivalent angle; a few degrees are pose-estimation jitter and frame quantisation,
# 10–15° a recognisable copy with sloppy limbs, 20–25° the level of an unrelated dance
# built from similar moves, 90° random poses. Calibrated on the synthetic dancers of
# tests/scoring/test_dance.py and the graded table of tests/scoring/test_dance_calibration.py.
SCORE_ANCHORS: tuple[tuple[float, float], ...] = (
    (0.0, 100.0), (5.0, 96.0), (10.0, 87.0), (15.0, 70.0), (20.0, 40.0), (25.0, 24.0),
    (30.0, 15.0), (40.0, 7.0), (50.0, 3.0), (65.0, 1.0), (90.0, 0.0),
)  # fmt: skip

Mirror = Literal["off", "on", "auto"]
Rating = Literal["perfect", "good", "ok", "miss"]
# A move (one timeline bin: a beat with bpm, else a second) is rated by its score: the
# lowest score of each rating, from the best down; below the last one it is a "miss".
RATINGS: tuple[tuple[Rating, float], ...] = (("perfect", 90.0), ("good", 75.0), ("ok", 50.0))
RATING_NAMES: tuple[Rating, ...] = ("perfect", "good", "ok", "miss")


def rating_of(score: float) -> Rating:
    """A move's rating from its score 0..100 (``RATINGS``)."""
    return next((name for name, floor in RATINGS if score >= floor), "miss")


@dataclass(frozen=True)
class DanceConfig:
    """Scoring options; times in seconds, ``bpm`` switches the timeline to one point per beat.

    ``mirror``: "on" compares with the mirrored reference (a learner copying a mirrored
    video), "auto" tries both and keeps the better, "off" compares as filmed.
    """

    mirror: Mirror = "off"
    title: str | None = None  # the reference's name, for "this doesn't look like <title>"
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
    moment_max_score: float = 50.0  # a part's bin score at or below which it is a worst moment
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
            (not 0 <= self.moment_max_score <= 100, "moment_max_score must be within 0..100"),
            (self.title is not None and len(self.title) > 200, "title must be at most 200 characters"),
            (not 0 <= self.max_moments <= 50, "max_moments must be within 0..50"),
            (not 0 <= self.max_feedback <= 50, "max_feedback must be within 0..50"),
            (not self.timing_tolerance_ms >= 0, "timing_tolerance_ms must be >= 0"),
        ]  # fmt: skip
        for failed, message in bad:
            if failed:
                raise ValueError(f"DanceConfig: {message}")


TimingReason = Literal["another_dance", "still_pose"]


@dataclass(frozen=True)
class Timing:
    """Learner's offset (ms, > 0 = late behind the reference) and tempo ratio (> 1 = slower).

    Both are None when they mean nothing, and ``reason`` says why: "still_pose" (the
    reference does not move, so it has no tempo to follow) or "another_dance" (the
    attempt does not follow the reference at all).
    """

    offset_ms: float | None
    tempo_ratio: float | None
    reason: TimingReason | None = None


@dataclass(frozen=True)
class TimelinePoint:
    """Score and rating of one time bin (one move) of the learner's video (s); None: nobody seen."""

    start_s: float
    end_s: float
    score: float | None
    rating: Rating | None = None


@dataclass(frozen=True)
class Match:
    """Does the attempt follow the reference at all? With the evidence the verdict rests on.

    ``poor_moments``: share of the learner's moments where most of the body (by weight)
    scores below the "ok" floor; ``motion_agreement`` (−1..1): whether the learner's limbs
    turn the way the reference's do at the matched moments (None for a still reference).
    ``confidence`` (0.5..1) is how sure the verdict is (``dance_moments``).
    """

    same_choreography: bool
    confidence: float
    poor_moments: float
    motion_agreement: float | None


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
    """Error φ (degrees) per body part × time bin: ``errors_deg (parts, bins)``, NaN = unseen.

    ``scores (parts, bins)``, when given, is each part's score in the bin (the mean of its
    moments' scores), which the heatmap shows; ``ratings`` the bins' move ratings.
    """

    parts: tuple[str, ...]
    starts_s: np.ndarray
    bin_s: float
    errors_deg: np.ndarray
    scores: np.ndarray | None = None
    ratings: tuple[Rating | None, ...] | None = None


@dataclass(frozen=True)
class FrameErrors:
    """Per learner frame and body part, the weighted error along the DTW path (dance.py)."""

    num: np.ndarray  # (frames, parts) mean over the frame's path cells of Σ weight·(1 − cos)
    den: np.ndarray  # (frames, parts) mean over the frame's path cells of Σ weight
    ref_frame: np.ndarray  # (frames,) reference frame matched in the middle of those cells
    scored: np.ndarray  # (frames,) person seen, and not before/after the reference


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class MomentScores:
    """Scores of each learner frame (a moment), 0..100, NaN where not scored.

    ``parts (frames, parts)``: each body part's score at that moment (NaN: part unseen);
    ``overall (frames,)``: the moment's score, from the weighted mean error of its seen parts.
    """

    parts: np.ndarray
    overall: np.ndarray


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class DanceResult:
    """Overall score 0..100, per-part scores (None = part not visible) and their explanation."""

    score: float
    error_deg: float
    parts: Mapping[str, float | None]
    timing: Timing
    timeline: tuple[TimelinePoint, ...]
    moves: Mapping[Rating, int]
    match: Match
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


_ANCHOR_DEG = np.array([d for d, _ in SCORE_ANCHORS])
_ANCHOR_SCORE = np.array([s for _, s in SCORE_ANCHORS])


def score_from_error(error_deg: float) -> float:
    """Score 0..100 from an equivalent angular error in degrees (``SCORE_ANCHORS``)."""
    return float(np.interp(error_deg, _ANCHOR_DEG, _ANCHOR_SCORE))


def scores_from_errors(error_deg: np.ndarray) -> np.ndarray:
    """``score_from_error`` of every element (NaN stays NaN)."""
    out = np.interp(np.nan_to_num(error_deg, nan=0.0), _ANCHOR_DEG, _ANCHOR_SCORE)
    return np.where(np.isnan(error_deg), np.nan, out)

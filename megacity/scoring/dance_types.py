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

# (φ degrees, score), piecewise linear. φ is the overall equivalent angle; a few degrees
# are pose-estimation jitter and frame quantisation, 10–15° a recognisable copy with
# sloppy limbs, 20–25° the level of an unrelated dance built from similar moves, 90°
# random poses. Calibrated on the synthetic dancers of tests/scoring/test_dance.py.
SCORE_ANCHORS: tuple[tuple[float, float], ...] = (
    (0.0, 100.0), (5.0, 96.0), (10.0, 88.0), (15.0, 74.0), (20.0, 50.0), (25.0, 36.0),
    (30.0, 27.0), (40.0, 16.0), (50.0, 9.0), (65.0, 3.0), (90.0, 0.0),
)  # fmt: skip

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


@dataclass(frozen=True)
class FrameErrors:
    """Per learner frame and body part, the weighted error along the DTW path (dance.py)."""

    num: np.ndarray  # (frames, parts) mean over the frame's path cells of Σ weight·(1 − cos)
    den: np.ndarray  # (frames, parts) mean over the frame's path cells of Σ weight
    ref_frame: np.ndarray  # (frames,) reference frame matched in the middle of those cells
    scored: np.ndarray  # (frames,) person seen, and not before/after the reference


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

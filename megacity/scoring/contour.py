"""Pitch contours of recordings: the frame grid, speaker-normalised semitones, speech
activity and pauses, and the alignment of an attempt with its reference.

A ``PitchTrack`` is what the speech side extracts from audio (``engines.pitch``): per
frame (10 ms by default) F0 in Hz (NaN where unvoiced), loudness in dBFS and, for
aligning, 12 MFCCs (spectral shape: which sound is being made, whoever makes it).

Alignment is the exact banded DTW of ``dtw`` over, per frame, the MFCCs (normalised per
recording, so a child and an adult actor compare), voicing, and for singing the pitch in
semitones around the recording's median (the melody's shape, whatever its key). Both
recordings are trimmed to their active span first, so leading and trailing silence
neither bend nor stretch the path.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np

from .dtw import dtw

ACTIVE_RANGE_DB = 30.0  # a frame within this of the loud end (95th percentile) is active
MIN_PAUSE_S = 0.15  # silence inside speech shorter than this is articulation, not a pause
MAX_FRAMES = 360_000  # one hour at 10 ms
_MFCC_WEIGHT = 0.5  # per normalised coefficient: 12 of them
_VOICING_WEIGHT = 2.0
_PITCH_WEIGHT = 1.0  # per semitone, when the melody guides the alignment
_PITCH_CLIP_ST = 12.0
MAX_FINE_FRAMES = 1500  # 15 s at 10 ms: beyond, the alignment runs on 20 ms frames


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class PitchTrack:
    """F0 and loudness of one recording on a regular frame grid.

    ``times (frames,)`` frame centres in seconds, increasing; ``f0_hz (frames,)`` NaN where
    unvoiced; ``energy_db (frames,)`` RMS level in dBFS (−120 for digital silence);
    ``mfcc (frames, k)`` or None.
    """

    times: np.ndarray
    f0_hz: np.ndarray
    energy_db: np.ndarray
    mfcc: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.times)
        if not 2 <= n <= MAX_FRAMES or self.times.ndim != 1:
            raise ValueError(f"a pitch track needs 2..{MAX_FRAMES} frames, got {self.times.shape}")
        if self.f0_hz.shape != (n,) or self.energy_db.shape != (n,):
            raise ValueError("times, f0_hz and energy_db must have the same length")
        if not np.isfinite(self.times).all() or (np.diff(self.times) <= 0).any():
            raise ValueError("times must be finite and increasing")
        f0 = self.f0_hz[~np.isnan(self.f0_hz)]
        if not np.isfinite(f0).all() or (f0 <= 0).any():
            raise ValueError("f0_hz must be positive or NaN (unvoiced)")
        if not np.isfinite(self.energy_db).all():
            raise ValueError("energy_db must be finite")
        if self.mfcc is not None and (
            self.mfcc.ndim != 2 or len(self.mfcc) != n or not np.isfinite(self.mfcc).all()
        ):
            raise ValueError("mfcc must be finite, one row per frame")

    @property
    def hop_s(self) -> float:
        """Seconds between frames."""
        return float(self.times[-1] - self.times[0]) / (len(self.times) - 1)

    @property
    def voiced(self) -> np.ndarray:
        """Frames with a pitch."""
        return np.asarray(np.isfinite(self.f0_hz))

    @property
    def voiced_s(self) -> float:
        """Seconds of voiced frames."""
        return float(self.voiced.sum()) * self.hop_s


@dataclass(frozen=True)
class TimedWord:
    """A word of a recording and when it was said (seconds), e.g. from Whisper's timings."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Pause:
    """Silence inside speech, seconds from the start of the recording."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def median_hz(track: PitchTrack) -> float:
    """The speaker's median F0 over voiced frames (NaN when nothing is voiced)."""
    f0 = track.f0_hz[track.voiced]
    return float(np.median(f0)) if f0.size else float("nan")


def semitones(track: PitchTrack, reference_hz: float | None = None) -> np.ndarray:
    """F0 in semitones around ``reference_hz`` (default: the speaker's median); NaN unvoiced."""
    ref = median_hz(track) if reference_hz is None else reference_hz
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(12.0 * np.log2(track.f0_hz / ref))


def active(track: PitchTrack) -> np.ndarray:
    """Frames with sound: voiced, or within ``ACTIVE_RANGE_DB`` of the loud end."""
    top = float(np.percentile(track.energy_db, 95))
    return np.asarray(track.voiced | (track.energy_db >= top - ACTIVE_RANGE_DB))


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive True frames as ``[start, end)`` index pairs."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def span(track: PitchTrack) -> tuple[int, int]:
    """``[first, last + 1)`` active frame; the whole track when nothing is active."""
    idx = np.flatnonzero(active(track))
    return (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, len(track.times))


def pauses(track: PitchTrack, min_pause_s: float = MIN_PAUSE_S) -> tuple[Pause, ...]:
    """Silences of at least ``min_pause_s`` between the first and the last active frame."""
    first, last = span(track)
    quiet = ~active(track)
    hop = track.hop_s
    found = []
    for a, b in runs(quiet[first:last]):
        if (b - a) * hop >= min_pause_s:
            start = float(track.times[first + a]) - hop / 2
            found.append(Pause(start, start + (b - a) * hop))
    return tuple(found)


def speaking_s(track: PitchTrack) -> float:
    """Seconds from the first to the last active frame, without the pauses."""
    first, last = span(track)
    return (last - first) * track.hop_s - sum(p.duration_s for p in pauses(track))


def _features(track: PitchTrack, lo: int, hi: int, use_pitch: bool) -> np.ndarray:
    cols = []
    if track.mfcc is not None:
        m = track.mfcc[lo:hi, 1:]  # c0 is loudness: the microphone, not the sound
        std = m.std(axis=0)
        cols.append(_MFCC_WEIGHT * (m - m.mean(axis=0)) / np.where(std > 1e-9, std, 1.0))
    else:
        e = track.energy_db[lo:hi]
        cols.append(((e - e.max()) / 10.0)[:, None])
    voiced = track.voiced[lo:hi]
    cols.append(_VOICING_WEIGHT * voiced[:, None].astype(np.float64))
    if use_pitch:
        st = np.clip(np.nan_to_num(semitones(track)[lo:hi]), -_PITCH_CLIP_ST, _PITCH_CLIP_ST)
        cols.append(_PITCH_WEIGHT * np.where(voiced, st, 0.0)[:, None])
    return np.hstack(cols)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class Alignment:
    """DTW path ``(steps, 2)`` of (attempt frame, reference frame), in whole-track indices."""

    path: np.ndarray

    def attempt_frames(self, reference_frames: int, smooth: int = 1) -> np.ndarray:
        """Per reference frame, the matched attempt frame: the mean over the path, its offset
        smoothed by a running median over ``smooth`` frames (a slow time map: the path's
        local detours, where it slid a wrong note onto a right one, are ironed out)."""
        j, i = self.path[:, 1], self.path[:, 0]
        counts = np.bincount(j, minlength=reference_frames)
        mean_i = np.bincount(j, i, minlength=reference_frames) / np.maximum(counts, 1)
        seen = counts > 0
        cols = np.arange(reference_frames)
        offset = np.interp(cols, cols[seen], (mean_i - cols)[seen])
        if smooth > 1:
            half = smooth // 2
            padded = np.pad(offset, half, mode="edge")
            windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
            offset = np.median(windows, axis=1)
        return np.round(cols + offset).astype(np.int64)

    def attempt_time(self, attempt: PitchTrack, reference: PitchTrack, t: float) -> float:
        """The attempt's time (s) matched to the reference's time ``t`` (mean over the path)."""
        j = int(np.clip(np.searchsorted(reference.times, t), 0, len(reference.times) - 1))
        rows = self.path[self.path[:, 1] == j, 0]
        if rows.size == 0:  # a reference frame before or after the aligned span
            nearest = self.path[np.argmin(np.abs(self.path[:, 1] - j))]
            return float(attempt.times[nearest[0]] + (t - reference.times[nearest[1]]))
        return float(attempt.times[rows].mean())


def align(
    attempt: PitchTrack,
    reference: PitchTrack,
    *,
    use_pitch: bool,
    band_fraction: float = 0.15,
    band_min_s: float = 1.0,
) -> Alignment:
    """Align the active spans of two tracks by exact banded DTW (see the module docstring)."""
    if (attempt.mfcc is None) != (reference.mfcc is None):
        raise ValueError("both tracks need MFCCs, or neither")
    if (
        attempt.mfcc is not None
        and reference.mfcc is not None
        and attempt.mfcc.shape[1] != reference.mfcc.shape[1]
    ):
        raise ValueError("the tracks have different numbers of MFCCs")
    a0, a1 = span(attempt)
    r0, r1 = span(reference)
    x = _features(attempt, a0, a1, use_pitch)
    y = _features(reference, r0, r1, use_pitch)
    # Long recordings are aligned on pairs of frames (20 ms): a quarter of the DTW's cells.
    step = 2 if max(len(x), len(y)) > MAX_FINE_FRAMES else 1
    x, y = _pooled(x, step), _pooled(y, step)
    radius = max(band_fraction * len(y), band_min_s / (reference.hop_s * step))
    coarse = dtw(x, y, radius=max(1, round(radius))).path
    fine = (coarse[:, None, :] * step + np.arange(step)[None, :, None]).reshape(-1, 2)
    fine = np.minimum(fine, [a1 - a0 - 1, r1 - r0 - 1])
    return Alignment(fine + np.array([a0, r0]))


def _pooled(features: np.ndarray, step: int) -> np.ndarray:
    """Means over ``step`` consecutive frames (the last group may be shorter)."""
    if step == 1:
        return features
    groups = -(-len(features) // step)
    padded = np.concatenate([features, np.repeat(features[-1:], groups * step - len(features), 0)])
    return np.asarray(padded.reshape(groups, step, -1).mean(axis=1))


def jsonable(value: Any) -> Any:
    """Dataclasses, mappings and sequences as plain JSON values; floats rounded to 3 decimals."""
    if isinstance(value, float | np.floating):
        return round(float(value), 3)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value

"""The worker side of the pose engine: what runs in its spawned MediaPipe processes.

Spawned workers import this module alone (the pool pickles references to `init_worker`,
`warm` and `extract_segment`), so it imports only what they need: numpy, the video
decoder and the engine errors, never the web stack or other engines. The landmarkers
live in a module-level holder because a process pool has no other place to keep
per-process state.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import util
from pathlib import Path
from typing import Any

import numpy as np

from megacity.engines.errors import ModelUnavailable
from megacity.engines.video import sample_frames
from megacity.scoring.pose import NUM_LANDMARKS

INSTALL_HINT = "pip install --no-deps 'mediapipe>=0.10.30'"


@dataclass(frozen=True, slots=True)
class LandmarkerSettings:
    """The model file and the three confidences (0..1), given to every worker once."""

    model_path: str
    detection: float
    presence: float
    tracking: float


@dataclass(frozen=True, slots=True)
class Segment:
    """One worker's share of a clip: the video file, its time range (s), fps, the length cap."""

    path: str
    start_s: float
    end_s: float
    fps: float
    max_seconds: float


class _Landmarkers:
    """One worker's landmarkers: a fresh one per segment, the next made in the background."""

    def __init__(self, settings: LandmarkerSettings) -> None:
        self.settings = settings
        self._spare: Any = None
        self._error: ModelUnavailable | None = None
        self._thread: threading.Thread | None = None
        self.create_seconds = 0.0

    def prepare(self) -> None:
        self._thread = threading.Thread(target=self._make, name="pose-landmarker", daemon=True)
        self._thread.start()

    def ready(self) -> None:
        """Wait for the spare landmarker (making it now if the last try failed)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._spare is None:
            self._make()
        if self._spare is None:
            raise self._error or ModelUnavailable("the pose landmarker could not be created")

    def take(self) -> Any:
        self.ready()
        landmarker, self._spare = self._spare, None
        return landmarker

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._spare is not None:
            self._spare.close()
            self._spare = None

    def _make(self) -> None:
        started = time.perf_counter()
        try:
            self._spare, self._error = _create_landmarker(self.settings), None
            self.create_seconds = time.perf_counter() - started
        except ModelUnavailable as exc:
            self._error = exc


_worker: _Landmarkers | None = None
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved = -1


def init_worker(settings: LandmarkerSettings) -> None:
    global _worker
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _worker = _Landmarkers(settings)
    _worker.prepare()
    util.Finalize(None, _worker.close, exitpriority=10)  # mediapipe's __del__ fails at exit
    # A pool's workers hold both ends of their task pipe, so they never see a killed
    # router go: watch the parent, and leave with it.
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), name="pose-parent", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def warm() -> float:
    """Make sure this worker can make a landmarker; seconds its creation took."""
    assert _worker is not None
    _worker.ready()
    return _worker.create_seconds


def extract_segment(segment: Segment) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) and ``(frames, 33, 4)`` keypoints of one segment, with a fresh landmarker."""
    import mediapipe as mp

    assert _worker is not None
    landmarker = _worker.take()
    times: list[float] = []
    rows: list[np.ndarray] = []
    last_ms = -1
    try:
        frames = sample_frames(
            Path(segment.path),
            fps=segment.fps,
            start_s=segment.start_s,
            end_s=segment.end_s,
            max_seconds=segment.max_seconds,
        )
        for t, rgb in frames:
            last_ms = max(round(t * 1000), last_ms + 1)  # VIDEO mode: strictly increasing ms
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
            with _quiet_stderr() if not rows else contextlib.nullcontext():
                result = landmarker.detect_for_video(image, last_ms)
            times.append(t)
            rows.append(_landmarks(result))
    finally:
        landmarker.close()
        _worker.prepare()
    if not rows:
        return np.zeros(0), np.zeros((0, NUM_LANDMARKS, 4), np.float32)
    return np.asarray(times, dtype=np.float64), np.stack(rows)


def _landmarks(result: Any) -> np.ndarray:
    if not result.pose_landmarks:
        return np.full((NUM_LANDMARKS, 4), np.nan, np.float32)
    return np.array(
        [
            (p.x, p.y, p.z, min(max(p.visibility if p.visibility is not None else 0.0, 0.0), 1.0))
            for p in result.pose_landmarks[0]
        ],
        dtype=np.float32,
    )


def _create_landmarker(settings: LandmarkerSettings) -> Any:
    try:
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:
        raise ModelUnavailable(
            f"mediapipe cannot be imported ({exc}); install it with {INSTALL_HINT}"
        ) from None
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=settings.model_path),
        running_mode=vision.RunningMode.VIDEO,
        num_poses=1,
        min_pose_detection_confidence=settings.detection,
        min_pose_presence_confidence=settings.presence,
        min_tracking_confidence=settings.tracking,
    )
    try:
        with _quiet_stderr():
            return vision.PoseLandmarker.create_from_options(options)
    except Exception as exc:  # a bad file: every error means the same to a client
        raise ModelUnavailable(
            f"pose model {settings.model_path!r} cannot be loaded"
            f" ({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''})."
            " It must be a MediaPipe Pose Landmarker .task file (pose_landmarker_full.task)."
        ) from None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send fd 2 to /dev/null: MediaPipe's C++ logging (absl, TFLite) ignores GLOG_* here."""
    global _quiet_depth, _quiet_saved
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                os.dup2(_quiet_saved, 2)
                os.close(_quiet_saved)


__all__ = [
    "INSTALL_HINT",
    "LandmarkerSettings",
    "Segment",
    "extract_segment",
    "init_worker",
    "warm",
]

"""The in-process face engine: MediaPipe Face Landmarker with blendshapes and head pose.

Loaded the real way from a configured ``.task`` bundle (Google's
``face_landmarker.task``: a path, or a bare name looked up in ``$MEGACITY_MODELS_DIR``).
Each analysis samples frames (a video at ``fps``, or the photos given), and for every
frame keeps the blendshape scores the expression scoring reads
(`megacity.scoring.expression.BLENDSHAPE_NAMES`) and the 4×4 facial transformation
matrix; a frame without a face is a row of NaN. No landmark, no picture and no frame
leaves the engine: only these derived numbers (faces of minors are personal data).

Landmarkers run in IMAGE mode — no tracking state, so one clip can never leak into the
next and frames need no increasing clock — one per worker thread, made on first use and
reused (creating one takes ~0.3 s, a frame ~10 ms on one core). MediaPipe releases the
GIL while it runs, so the router's event loop keeps serving. mediapipe and numpy are
imported inside the functions: the router's start-up never loads them.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from megacity.engines.errors import ModelUnavailable
from megacity.engines.loading import SlotEngine, is_number, model_file, option_values

log = logging.getLogger("megacity.face")

DEFAULT_MODEL = "face_landmarker.task"
INSTALL_HINT = "pip install --no-deps 'mediapipe>=0.10.30'"


@dataclass(frozen=True, slots=True)
class FaceEngineConfig:
    """A face node's `options`: model file, frames sampled per second, confidences, threads."""

    model_path: str = DEFAULT_MODEL  # option `model`
    fps: float = 5.0
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    max_concurrency: int = 2  # analyses at once, one landmarker each
    warmup: bool = False  # make the first landmarker at start-up

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FaceEngineConfig:
        """Validate a node's `options`; ValueError names an unknown or bad key."""
        config = cls(**option_values(cls, options, "face engine"))
        if not isinstance(config.model_path, str) or not config.model_path:
            raise ValueError("face engine: model must be the path of a .task file")
        if not is_number(config.fps) or not 0 < config.fps <= 30:
            raise ValueError("face engine: fps must be a number within (0, 30]")
        for name in ("min_detection_confidence", "min_presence_confidence"):
            if not is_number(getattr(config, name)) or not 0 <= getattr(config, name) <= 1:
                raise ValueError(f"face engine: {name} must be within 0..1")
        if not isinstance(config.max_concurrency, int) or config.max_concurrency < 1:
            raise ValueError("face engine: max_concurrency must be a positive integer")
        if not isinstance(config.warmup, bool):
            raise ValueError("face engine: warmup must be true or false")
        return config

    def resolved_model_path(self, env: Mapping[str, str] | None = None) -> Path:
        return model_file(self.model_path, env)


@dataclass(frozen=True, eq=False)  # holds arrays
class FaceTrack:
    """Per sampled frame: time (s), blendshape scores ``(n, k)`` named `names`, and the
    facial transformation matrix ``(n, 4, 4)``; NaN rows where no face was found."""

    times: Any
    blendshapes: Any
    names: tuple[str, ...]
    matrices: Any

    @property
    def frames(self) -> int:
        return len(self.times)

    @property
    def faces(self) -> int:
        """Frames in which a face was found."""
        import numpy as np

        return int((~np.isnan(self.blendshapes).any(axis=1)).sum()) if self.frames else 0


class _Landmarkers:
    """Landmarkers made on demand and handed out one per running analysis."""

    def __init__(self, options: Any) -> None:
        self._options = options
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._all: list[Any] = []
        self._idle.put(self._make())  # the first one proves the model loads

    def _make(self) -> Any:
        from mediapipe.tasks.python import vision

        landmarker = vision.FaceLandmarker.create_from_options(self._options)
        self._all.append(landmarker)
        return landmarker

    def take(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._make()

    def give(self, landmarker: Any) -> None:
        self._idle.put(landmarker)

    def close(self) -> None:
        for landmarker in self._all:
            try:
                landmarker.close()
            except Exception:
                log.debug("face landmarker close failed", exc_info=True)
        self._all.clear()


class FaceEngine(SlotEngine):
    """Face blendshapes and head pose of photos or of a video's sampled frames."""

    def __init__(self, config: FaceEngineConfig, name: str = "face") -> None:
        super().__init__("face", config.model_path, config.max_concurrency, f"face-{name}")
        self.config = config
        self.name = name

    def _build(self) -> _Landmarkers:
        path = self.config.resolved_model_path()
        try:
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:
            raise RuntimeError(f"mediapipe cannot be imported ({exc}); {INSTALL_HINT}") from None
        if not path.is_file():
            where = (
                " (also looked in $MEGACITY_MODELS_DIR)"
                if os.environ.get("MEGACITY_MODELS_DIR")
                else ""
            )
            raise FileNotFoundError(f"face model {self.config.model_path!r} not found{where}")
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            min_face_detection_confidence=self.config.min_detection_confidence,
            min_face_presence_confidence=self.config.min_presence_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        return _Landmarkers(options)

    def _unavailable(self, detail: str) -> ModelUnavailable:
        return ModelUnavailable(
            f"face engine {self.name!r}: the model cannot be loaded ({detail}). Set the face"
            " node's options.model (or MEGACITY_FACE_MODEL) to a local face_landmarker.task,"
            " or put it in $MEGACITY_MODELS_DIR."
        )

    async def video(
        self, data: bytes, *, max_seconds: float, fps: float | None = None
    ) -> FaceTrack:
        """A video's frames sampled at `fps` (the config's by default), off the event loop."""
        rate = fps or self.config.fps
        return await self._in_line(lambda pool: self.video_sync(pool, data, max_seconds, rate))

    async def images(self, pictures: Sequence[Any]) -> FaceTrack:
        """RGB ``uint8`` pictures (photos), one frame each, timed 0, 1, 2 … (their order)."""
        return await self._in_line(lambda pool: _track(pool, enumerate(pictures)))

    def video_sync(
        self, pool: _Landmarkers, data: bytes, max_seconds: float, fps: float
    ) -> FaceTrack:
        from megacity.engines.video import sample_frames

        return _track(pool, sample_frames(data, fps=fps, max_seconds=max_seconds))

    def close(self) -> None:
        super().close()
        pool = self._slot.value
        if pool is not None:
            pool.close()
        self._slot.clear()


def _track(pool: _Landmarkers, frames: Any) -> FaceTrack:
    import mediapipe as mp
    import numpy as np

    from megacity.scoring.expression import BLENDSHAPE_NAMES

    column = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
    times: list[float] = []
    scores: list[Any] = []
    matrices: list[Any] = []
    landmarker = pool.take()
    try:
        for t, rgb in frames:
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
            result = landmarker.detect(image)
            row = np.full(len(BLENDSHAPE_NAMES), np.nan, np.float32)
            matrix = np.full((4, 4), np.nan, np.float32)
            if result.face_blendshapes:
                for category in result.face_blendshapes[0]:
                    i = column.get(category.category_name)
                    if i is not None:
                        row[i] = category.score
                if result.facial_transformation_matrixes:
                    matrix = np.asarray(result.facial_transformation_matrixes[0], np.float32)
            times.append(float(t))
            scores.append(row)
            matrices.append(matrix)
    finally:
        pool.give(landmarker)
    n = len(times)
    return FaceTrack(
        times=np.asarray(times, np.float64),
        blendshapes=np.stack(scores) if n else np.zeros((0, len(BLENDSHAPE_NAMES)), np.float32),
        names=BLENDSHAPE_NAMES,
        matrices=np.stack(matrices) if n else np.zeros((0, 4, 4), np.float32),
    )


__all__ = ["DEFAULT_MODEL", "FaceEngine", "FaceEngineConfig", "FaceTrack"]

"""The in-process motion engine: MediaPipe Pose Landmarker (Tasks API, VIDEO mode), 33 keypoints.

MediaPipe runs in a persistent pool of ``workers`` processes (spawned, never forked: the
router has threads), one core each. A clip shorter than ``split_min_s`` is one segment
for one worker; a longer one is cut by time into one contiguous segment per idle worker
(all of them when the engine is otherwise idle, none when it is busy: splitting costs
~6 % of throughput), each worker seeks to its own segment and decodes only that, and the
results are merged in time order (the frame sampler makes the union exactly the frames
of one pass). The video reaches the workers through a private temp file (0600, always
deleted), not pickled bytes. Measured on 2 cores (bench/pose_extract.py): 21 ms a frame
in one process, a 10 s clip in 3.1 s on one worker and 1.9 s on two.

VIDEO mode tracks the person from frame to frame and needs increasing timestamps, so
every segment gets a landmarker of its own, never used before: one clip's tracking can
never leak into the next. Creating one takes ~80 ms, so each worker makes the next one
in a background thread while it waits for work. Extractions run at most
``max_concurrency`` at a time; more wait in line.

The extraction (``PoseExtraction``, its ``.npz`` wire form) is in engines/keypoints.py;
what runs inside the worker processes is in engines/pose_worker.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from megacity.engines.errors import ModelUnavailable
from megacity.engines.keypoints import PoseExtraction
from megacity.engines.loading import MODELS_DIR_ENV, is_number, model_file, option_values
from megacity.engines.pose_worker import (
    INSTALL_HINT,
    LandmarkerSettings,
    Segment,
    extract_segment,
    init_worker,
    warm,
)
from megacity.engines.video import DEFAULT_FPS, probe_video
from megacity.errors import UnprocessableEntity

log = logging.getLogger("megacity.pose")

DEFAULT_MODEL = "pose_landmarker_full.task"


@dataclass(frozen=True, slots=True)
class PoseEngineConfig:
    """A pose node's `options`: model file, sampling fps, worker processes, confidences."""

    model_path: str = DEFAULT_MODEL  # option `model`: a .task file (a bare name: see below)
    fps: float = DEFAULT_FPS  # frames sampled per second of video
    workers: int = 2  # MediaPipe processes, one core each; 0: one per CPU
    split_min_s: float = 2.0  # shorter clips are not split between workers
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    max_concurrency: int = 2  # extractions at once; more wait in line
    warmup: bool = True  # start the workers and their landmarkers at start-up

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PoseEngineConfig:
        """Validate a node's `options` mapping; ValueError names an unknown or bad key."""
        config = cls(**option_values(cls, options, "pose engine"))
        if not isinstance(config.model_path, str) or not config.model_path:
            raise ValueError("pose engine: model must be the path of a .task file")
        if not is_number(config.fps) or not 0 < config.fps <= 60:
            raise ValueError("pose engine: fps must be a number within (0, 60]")
        if not is_number(config.split_min_s) or config.split_min_s < 0:
            raise ValueError("pose engine: split_min_s must be a number of seconds >= 0")
        for name in ("min_detection_confidence", "min_presence_confidence"):
            if not is_number(getattr(config, name)) or not 0 <= getattr(config, name) <= 1:
                raise ValueError(f"pose engine: {name} must be within 0..1")
        if (
            not is_number(config.min_tracking_confidence)
            or not 0 <= config.min_tracking_confidence <= 1
        ):
            raise ValueError("pose engine: min_tracking_confidence must be within 0..1")
        if (
            not isinstance(config.workers, int)
            or isinstance(config.workers, bool)
            or config.workers < 0
        ):
            raise ValueError("pose engine: workers must be an integer >= 0 (0: one per CPU)")
        if not isinstance(config.max_concurrency, int) or config.max_concurrency < 1:
            raise ValueError("pose engine: max_concurrency must be a positive integer")
        if not isinstance(config.warmup, bool):
            raise ValueError("pose engine: warmup must be true or false")
        return config

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def resolved_model_path(self, env: Mapping[str, str] | None = None) -> Path:
        """The model file: the path as given if it exists, else a bare file name in
        ``$MEGACITY_MODELS_DIR``; the path as given when neither exists."""
        return model_file(self.model_path, env)


class PoseEngine:
    """MediaPipe pose extraction on worker processes; `extract` is safe to call from many requests."""

    def __init__(self, config: PoseEngineConfig, name: str = "pose") -> None:
        self.config = config
        self.name = name
        self._threads = ThreadPoolExecutor(
            config.max_concurrency, thread_name_prefix=f"pose-{name}"
        )
        self._processes: ProcessPoolExecutor | None = None
        self._lock = threading.RLock()
        self._loaded = False
        self._failure: str | None = None
        self._counter_lock = threading.Lock()
        self.running = 0
        self.waiting = 0
        self.load_seconds: float | None = None  # workers started and landmarkers made
        self.landmarker_seconds: float | None = None  # one landmarker's creation, in a worker

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def failure(self) -> str | None:
        """Why the last load failed (None when loaded or untried)."""
        return self._failure

    def load(self) -> None:
        """Start the workers and their first landmarkers (blocking); ModelUnavailable if that fails."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            started = time.perf_counter()
            try:
                pool = self._pool()
                jobs = [pool.submit(warm) for _ in range(self.config.worker_count)]
                self.landmarker_seconds = max(job.result() for job in jobs)
            except (ModelUnavailable, BrokenProcessPool) as exc:
                detail = exc.message if isinstance(exc, ModelUnavailable) else "a worker died"
                self._failure = detail
                log.error(
                    "pose engine failed to load", extra={"engine": self.name, "error": detail}
                )
                if isinstance(exc, BrokenProcessPool):
                    self._restart()
                    raise ModelUnavailable(f"pose engine {self.name!r}: {detail}") from None
                raise
            self._loaded, self._failure = True, None
            self.load_seconds = time.perf_counter() - started
            log.info(
                "pose engine loaded",
                extra={"engine": self.name, "seconds": round(self.load_seconds, 3)},
            )

    async def warm_up(self) -> None:
        """Start the workers in the background; failures are logged, not raised."""
        with contextlib.suppress(ModelUnavailable):
            await asyncio.get_running_loop().run_in_executor(self._threads, self.load)

    async def extract(self, data: bytes, *, max_seconds: float) -> PoseExtraction:
        """Keypoints of a video held in memory (at most `max_seconds` long), off the event loop."""
        begun = threading.Event()

        def run() -> PoseExtraction:
            begun.set()
            self._count(waiting=-1)
            return self.extract_sync(data, max_seconds=max_seconds)

        self._count(waiting=1)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, run)
        finally:
            if not begun.is_set():  # cancelled while still in line
                self._count(waiting=-1)

    def extract_sync(self, data: bytes, *, max_seconds: float) -> PoseExtraction:
        """The same, blocking (CLI, bench); video errors are the 4xx of engines/video.py."""
        self._count(running=1)
        try:
            self.load()
            info = probe_video(data, max_seconds=max_seconds)
            with _private_copy(data) as path:
                times, keypoints = self._run(path, info.duration_s, max_seconds)
        finally:
            self._count(running=-1)
        if not times.size:
            raise UnprocessableEntity("the video holds no frames", code="no_frames", param="file")
        fps = min(self.config.fps, info.fps) if info.fps > 0 else self.config.fps
        return PoseExtraction(keypoints, times, info.width, info.height, fps, info.duration_s)

    def _run(
        self, path: Path, duration_s: float, max_seconds: float
    ) -> tuple[np.ndarray, np.ndarray]:
        cuts = segment_cuts(
            duration_s, self.config.worker_count, self.config.split_min_s, self.running - 1
        )
        jobs = [
            Segment(str(path), start, end, self.config.fps, max_seconds)
            for start, end in itertools.pairwise(cuts)
        ]
        pool = self._pool()
        futures: list[Future[tuple[np.ndarray, np.ndarray]]] = []
        try:
            futures = [pool.submit(extract_segment, job) for job in jobs]
            wait_futures(futures, return_when=FIRST_EXCEPTION)
            parts = [f.result() for f in futures]
        except ModelUnavailable as exc:  # e.g. the model file went away since start-up
            self._loaded, self._failure = False, exc.message
            raise
        except BrokenProcessPool:
            self._restart()
            from megacity.engines.openai_http import UpstreamFailure  # aiohttp: not in workers

            raise UpstreamFailure(self.name, "crash", "a pose worker process died") from None
        finally:
            for f in futures:
                f.cancel()
        times = np.concatenate([p[0] for p in parts])
        keypoints = np.concatenate([p[1] for p in parts])
        if times.size > 1:  # segments meet without overlap; never keep a time twice anyway
            keep = np.r_[True, times[1:] > np.maximum.accumulate(times)[:-1]]
            times, keypoints = times[keep], keypoints[keep]
        return times, keypoints

    def _count(self, *, running: int = 0, waiting: int = 0) -> None:
        with self._counter_lock:
            self.running += running
            self.waiting += waiting

    def _pool(self) -> ProcessPoolExecutor:
        """The worker pool, started on first use once the model and mediapipe are found."""
        with self._lock:
            return self._processes or self._start_pool()

    def _start_pool(self) -> ProcessPoolExecutor:
        model = self.config.resolved_model_path()
        if importlib.util.find_spec("mediapipe") is None:
            raise ModelUnavailable(
                f"pose engine {self.name!r}: mediapipe is not installed; install it with"
                f" {INSTALL_HINT} (the --no-deps keeps the headless OpenCV)"
            )
        if not model.is_file():
            where = f" (also looked in ${MODELS_DIR_ENV})" if os.environ.get(MODELS_DIR_ENV) else ""
            raise ModelUnavailable(
                f"pose model {self.config.model_path!r} not found{where}. Set the pose node's"
                f" options.model (or MEGACITY_POSE_MODEL) to a local pose_landmarker_full.task,"
                f" or put it in ${MODELS_DIR_ENV}."
            )
        settings = LandmarkerSettings(
            str(model),
            self.config.min_detection_confidence,
            self.config.min_presence_confidence,
            self.config.min_tracking_confidence,
        )
        self._processes = ProcessPoolExecutor(
            self.config.worker_count,
            mp_context=get_context("spawn"),
            initializer=init_worker,
            initargs=(settings,),
        )
        return self._processes

    def _restart(self) -> None:
        with self._lock:
            if self._processes is not None:
                self._processes.shutdown(wait=False, cancel_futures=True)
            self._processes = None
            self._loaded = False

    def close(self, *, wait: bool = False) -> None:
        """Stop the workers (after the segments they are running, when `wait`)."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=wait, cancel_futures=True)
        self._processes = None
        self._loaded = False


def segment_cuts(duration_s: float, workers: int, split_min_s: float, others: int) -> list[float]:
    """Segment bounds (s) for a clip: one segment per idle worker (`others` extractions are
    running beside this one), a single one for a clip under `split_min_s`."""
    n = max(1, workers - max(others, 0)) if duration_s >= split_min_s else 1
    return [-math.inf, *(duration_s * i / n for i in range(1, n)), math.inf]


@contextlib.contextmanager
def _private_copy(data: bytes) -> Iterator[Path]:
    """The bytes in a temp file only this user can read (mkstemp: 0600), always deleted."""
    fd, name = tempfile.mkstemp(prefix="megacity-pose-", suffix=".video")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


__all__ = [
    "DEFAULT_MODEL",
    "MODELS_DIR_ENV",
    "PoseEngine",
    "PoseEngineConfig",
    "segment_cuts",
]

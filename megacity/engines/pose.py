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

Output (``PoseExtraction``): ``(frames, 33, 4)`` float32 x, y, z, visibility in MediaPipe's
image-normalised coordinates of the displayed (rotated) picture, a row of NaN where no
person was found. Its ``.npz`` form is the wire format of remote pose nodes and the
storage format of reference dances.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import itertools
import logging
import math
import os
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields
from multiprocessing import get_context, util
from pathlib import Path
from typing import Any

import numpy as np

from megacity.engines.errors import ModelUnavailable
from megacity.engines.video import DEFAULT_FPS, probe_video, sample_frames
from megacity.errors import UnprocessableEntity
from megacity.scoring.pose import MAX_COORD, MAX_FPS, MAX_FRAMES, NUM_LANDMARKS, PoseSequence

log = logging.getLogger("megacity.pose")

DEFAULT_MODEL = "pose_landmarker_full.task"
MODELS_DIR_ENV = "MEGACITY_MODELS_DIR"  # where a bare model file name is also looked for
INSTALL_HINT = "pip install --no-deps 'mediapipe>=0.10.30'"
NPZ_VERSION = 1
_MAX_SIDE = 16_384  # px
_MAX_DURATION_S = 24 * 3600.0
_NPZ_FIELDS = {  # name: (dtype, shape; -1 is the frame count)
    "version": ("<i4", ()),
    "keypoints": ("<f4", (-1, NUM_LANDMARKS, 4)),
    "timestamps": ("<f8", (-1,)),
    "width": ("<i4", ()),
    "height": ("<i4", ()),
    "fps": ("<f8", ()),
    "duration_s": ("<f8", ()),
}
_MAX_NPY_BYTES = MAX_FRAMES * NUM_LANDMARKS * 4 * 4 + 1024


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
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in options.items():
            name = "model_path" if key == "model" else key
            if name not in known:
                raise ValueError(f"pose engine: unknown option {key!r}")
            if name in values:
                raise ValueError("pose engine: give `model` or `model_path`, not both")
            values[name] = value
        config = cls(**values)
        if not isinstance(config.model_path, str) or not config.model_path:
            raise ValueError("pose engine: model must be the path of a .task file")
        if not _number(config.fps) or not 0 < config.fps <= 60:
            raise ValueError("pose engine: fps must be a number within (0, 60]")
        if not _number(config.split_min_s) or config.split_min_s < 0:
            raise ValueError("pose engine: split_min_s must be a number of seconds >= 0")
        for name in ("min_detection_confidence", "min_presence_confidence"):
            if not _number(getattr(config, name)) or not 0 <= getattr(config, name) <= 1:
                raise ValueError(f"pose engine: {name} must be within 0..1")
        if (
            not _number(config.min_tracking_confidence)
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
        path = Path(self.model_path).expanduser()
        models_dir = (os.environ if env is None else env).get(MODELS_DIR_ENV)
        if not path.exists() and models_dir and path.name == self.model_path:
            candidate = Path(models_dir).expanduser() / path.name
            if candidate.exists():
                path = candidate
        return path.resolve()


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, eq=False)  # holds arrays
class PoseExtraction:
    """Keypoints ``(frames, 33, 4)`` float32 and their times (s) from one video, with the
    video's display size (px), the sampling rate (fps) and the video's duration (s)."""

    keypoints: np.ndarray
    timestamps: np.ndarray
    width: int
    height: int
    fps: float
    duration_s: float

    def __post_init__(self) -> None:
        kp = np.array(self.keypoints)  # a copy: the caller's array stays writable
        ts = np.array(self.timestamps)
        if kp.dtype != np.float32 or kp.ndim != 3 or kp.shape[1:] != (NUM_LANDMARKS, 4):
            raise ValueError(
                f"keypoints must be float32 (frames, 33, 4), got {kp.dtype} {kp.shape}"
            )
        if not 1 <= kp.shape[0] <= MAX_FRAMES:
            raise ValueError(f"an extraction holds 1..{MAX_FRAMES} frames, got {kp.shape[0]}")
        if np.isinf(kp).any() or (np.abs(np.nan_to_num(kp[:, :, :3])) > MAX_COORD).any():
            raise ValueError(f"keypoint coordinates must be finite and within ±{MAX_COORD:g}")
        vis = kp[:, :, 3][~np.isnan(kp[:, :, 3])]
        if ((vis < 0) | (vis > 1)).any():
            raise ValueError("visibility must be within 0..1")
        if ts.dtype != np.float64 or ts.shape != (kp.shape[0],) or not np.isfinite(ts).all():
            raise ValueError(f"timestamps must be {kp.shape[0]} finite float64 seconds")
        if (np.diff(ts) <= 0).any():
            raise ValueError("timestamps must be strictly increasing")
        for name in ("width", "height"):
            if not 1 <= int(getattr(self, name)) <= _MAX_SIDE:
                raise ValueError(f"{name} must be within 1..{_MAX_SIDE} px")
        if not (math.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            raise ValueError(f"fps must be within (0, {MAX_FPS:g}]")
        if not (math.isfinite(self.duration_s) and 0 <= self.duration_s <= _MAX_DURATION_S):
            raise ValueError("duration_s must be within 0..86400")
        kp.setflags(write=False)
        ts.setflags(write=False)
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "timestamps", ts)

    @property
    def frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def persons(self) -> int:
        """Frames in which a person was found."""
        return int((~np.isnan(self.keypoints[:, :, 0]).all(axis=1)).sum())

    @property
    def coverage(self) -> float:
        """The fraction of frames (0..1) in which a person was found."""
        return self.persons / self.frames

    def sequence(self) -> PoseSequence:
        """The keypoints as a scoring `PoseSequence` (aspect ratio = width / height)."""
        return PoseSequence(
            self.keypoints, timestamps=self.timestamps, aspect_ratio=self.width / self.height
        )

    def to_npz(self) -> bytes:
        """The extraction as a compressed numpy ``.npz`` (no pickles)."""
        out = io.BytesIO()
        np.savez_compressed(
            out,
            version=np.int32(NPZ_VERSION),
            keypoints=self.keypoints,
            timestamps=self.timestamps,
            width=np.int32(self.width),
            height=np.int32(self.height),
            fps=np.float64(self.fps),
            duration_s=np.float64(self.duration_s),
        )
        return out.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> PoseExtraction:
        """Read ``to_npz`` bytes from a node or storage; ValueError for anything else."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = sorted(info.filename for info in archive.infolist())
                if names != sorted(f"{name}.npy" for name in _NPZ_FIELDS):
                    raise ValueError(f"unexpected members {names[:10]}")
                arrays = {name: _read_npy(archive, name) for name in _NPZ_FIELDS}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as exc:
            raise ValueError(f"not a pose extraction .npz: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"not a pose extraction .npz: {exc}") from None
        if int(arrays["version"]) != NPZ_VERSION:
            raise ValueError(f"unsupported pose extraction version {int(arrays['version'])}")
        return cls(
            keypoints=arrays["keypoints"],
            timestamps=arrays["timestamps"],
            width=int(arrays["width"]),
            height=int(arrays["height"]),
            fps=float(arrays["fps"]),
            duration_s=float(arrays["duration_s"]),
        )


def _read_npy(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """One member, its header checked before any data is read (a header can claim any shape)."""
    dtype, pattern = _NPZ_FIELDS[name]
    info = archive.getinfo(f"{name}.npy")
    if info.file_size > _MAX_NPY_BYTES:
        raise ValueError(f"{name} is too large")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        reader = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, found = reader(member)
        if found.str != dtype or fortran or len(shape) != len(pattern):
            raise ValueError(f"{name} must be a {dtype} array of {len(pattern)} dimensions")
        if any(want not in (-1, got) for want, got in zip(pattern, shape, strict=True)):
            raise ValueError(f"{name} has shape {shape}")
        size = math.prod(shape) * found.itemsize
        if size > _MAX_NPY_BYTES:
            raise ValueError(f"{name} is too large")
        raw = member.read(size)
    if len(raw) != size:
        raise ValueError(f"{name} is truncated")
    return np.frombuffer(raw, dtype=found).reshape(shape).copy()


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
                jobs = [pool.submit(_warm) for _ in range(self.config.worker_count)]
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
            _Segment(str(path), start, end, self.config.fps, max_seconds)
            for start, end in itertools.pairwise(cuts)
        ]
        pool = self._pool()
        futures: list[Future[tuple[np.ndarray, np.ndarray]]] = []
        try:
            futures = [pool.submit(_extract_segment, job) for job in jobs]
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
        settings = _LandmarkerSettings(
            str(model),
            self.config.min_detection_confidence,
            self.config.min_presence_confidence,
            self.config.min_tracking_confidence,
        )
        self._processes = ProcessPoolExecutor(
            self.config.worker_count,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
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


# Worker side: these run in the pool's processes. The landmarker lives in a module-level
# holder because a process pool has no other place to keep per-process state.


@dataclass(frozen=True, slots=True)
class _LandmarkerSettings:
    model_path: str
    detection: float
    presence: float
    tracking: float


@dataclass(frozen=True, slots=True)
class _Segment:
    path: str
    start_s: float
    end_s: float
    fps: float
    max_seconds: float


class _Landmarkers:
    """One worker's landmarkers: a fresh one per segment, the next made in the background."""

    def __init__(self, settings: _LandmarkerSettings) -> None:
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


def _init_worker(settings: _LandmarkerSettings) -> None:
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


def _warm() -> float:
    """Make sure this worker can make a landmarker; seconds its creation took."""
    assert _worker is not None
    _worker.ready()
    return _worker.create_seconds


def _extract_segment(segment: _Segment) -> tuple[np.ndarray, np.ndarray]:
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


def _create_landmarker(settings: _LandmarkerSettings) -> Any:
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
    "DEFAULT_MODEL",
    "MODELS_DIR_ENV",
    "PoseEngine",
    "PoseEngineConfig",
    "PoseExtraction",
    "segment_cuts",
]

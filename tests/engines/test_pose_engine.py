"""The pose engine with real MediaPipe and the real model, on videos of a real photo.

The astronaut is moved and scaled along a known path (tests/video.py); her landmarks in
the photo itself (a still clip of the photo alone) predict where they must be in every
frame. Tolerances were measured: the nose lands within 7 px of the prediction on a
640×480 canvas; the shoulders, on a space suit, wander more.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from megacity.engines.errors import ModelUnavailable
from megacity.engines.keypoints import PoseExtraction
from megacity.engines.pose import PoseEngine, PoseEngineConfig, segment_cuts
from megacity.errors import MegaCityError
from megacity.scoring.pose import LEFT_EAR, LEFT_SHOULDER, NOSE, RIGHT_EAR, RIGHT_SHOULDER
from tests import video as V

MAX_S = 60.0
NOSE_TOLERANCE = 12 / 640  # measured: at most 6.5 px
SHOULDERS_X_TOLERANCE = 16 / 640  # measured: at most 7 px (the midpoint between them)


def _engine(**options: object) -> PoseEngine:
    return PoseEngine(PoseEngineConfig.from_options({"model": V.POSE_MODEL, **options}))


@pytest.fixture(scope="module")
def one() -> Iterator[PoseEngine]:
    """One worker, clips never split: every extraction runs in the same process."""
    engine = _engine(workers=1, split_min_s=1e9)
    yield engine
    engine.close(wait=True)


@pytest.fixture(scope="module")
def two() -> Iterator[PoseEngine]:
    """Two workers, every clip split in two."""
    engine = _engine(workers=2, split_min_s=0)
    yield engine
    engine.close(wait=True)


@pytest.fixture(scope="module")
def photo(one: PoseEngine) -> np.ndarray:
    """Landmarks (x, y) of the photo alone, 0..1 across the photo: the prediction's base."""
    still = one.extract_sync(V.still_person(), max_seconds=MAX_S)
    assert still.persons == still.frames == 15
    return np.nanmean(still.keypoints[:, :, :2], axis=0).astype(np.float64)


@pytest.fixture(scope="module")
def moving(one: PoseEngine) -> PoseExtraction:
    return one.extract_sync(V.moving_person(), max_seconds=MAX_S)


def _check_follows_path(ex: PoseExtraction, photo: np.ndarray, offset_s: float) -> None:
    assert ex.persons == ex.frames
    kp = ex.keypoints.astype(np.float64)
    predicted = np.stack([V.MOVING.to_canvas(offset_s + t, photo) for t in ex.timestamps])
    assert np.abs(kp[:, NOSE, :2] - predicted[:, NOSE]).max() < NOSE_TOLERANCE
    mid = (kp[:, LEFT_SHOULDER, 0] + kp[:, RIGHT_SHOULDER, 0]) / 2
    mid_predicted = (predicted[:, LEFT_SHOULDER, 0] + predicted[:, RIGHT_SHOULDER, 0]) / 2
    assert np.abs(mid - mid_predicted).max() < SHOULDERS_X_TOLERANCE
    assert (kp[:, [NOSE, LEFT_SHOULDER, RIGHT_SHOULDER], 3] > 0.9).all()


def test_keypoints_follow_the_known_translation_and_scale(
    moving: PoseExtraction, photo: np.ndarray
) -> None:
    assert (moving.width, moving.height, moving.fps, moving.duration_s) == (640, 480, 15, 4.0)
    assert moving.keypoints.dtype == np.float32 and moving.keypoints.shape == (60, 33, 4)
    assert moving.timestamps == pytest.approx([k / 15 for k in range(60)], abs=1e-6)
    _check_follows_path(moving, photo, 0.0)
    # Scale: the ears' distance grows with the photo's side (300 → 380 px, ×1.27).
    ears = np.linalg.norm(
        (moving.keypoints[:, LEFT_EAR, :2] - moving.keypoints[:, RIGHT_EAR, :2]) * [640, 480],
        axis=1,
    )
    sides = np.array([V.MOVING.at(t)[2] for t in moving.timestamps])
    growth = np.median(ears[-10:]) / np.median(ears[:10])
    assert growth == pytest.approx(np.median(sides[-10:]) / np.median(sides[:10]), rel=0.08)


@pytest.mark.parametrize(("offset_s", "rotation"), [(1.5, 0), (0.0, 90)])
def test_a_clip_cut_later_or_filmed_upright_follows_the_path(
    one: PoseEngine, photo: np.ndarray, offset_s: float, rotation: int
) -> None:
    data = V.moving_person(2.5 if offset_s else 2.0, 30, offset_s, rotation)
    ex = one.extract_sync(data, max_seconds=MAX_S)
    assert (ex.width, ex.height) == (640, 480)
    assert ex.timestamps[0] == 0.0
    _check_follows_path(ex, photo, offset_s)


def test_frames_without_a_person_are_nan(one: PoseEngine) -> None:
    for noise in (False, True):
        ex = one.extract_sync(V.no_person(noise=noise), max_seconds=MAX_S)
        assert ex.frames == 30 and ex.persons == 0 and ex.coverage == 0.0
        assert np.isnan(ex.keypoints).all()


def test_two_workers_give_the_frames_of_one(
    two: PoseEngine, moving: PoseExtraction, photo: np.ndarray
) -> None:
    split = two.extract_sync(V.moving_person(), max_seconds=MAX_S)
    assert np.array_equal(split.timestamps, moving.timestamps)
    first = split.timestamps < 2.0  # the first worker's half: the very same computation
    assert np.array_equal(split.keypoints[first], moving.keypoints[first])
    # The second half starts with a detection instead of tracking (and MediaPipe's
    # smoothing restarts): close, not equal. Measured: at most 0.017 (11 px).
    assert np.abs(split.keypoints[:, NOSE, :2] - moving.keypoints[:, NOSE, :2]).max() < 0.025
    _check_follows_path(split, photo, 0.0)


def test_a_clip_is_split_between_idle_workers_only() -> None:
    inf = float("inf")
    assert segment_cuts(10.0, 2, 2.0, 0) == [-inf, 5.0, inf]
    assert segment_cuts(9.0, 3, 2.0, 0) == [-inf, 3.0, 6.0, inf]
    assert segment_cuts(9.0, 3, 2.0, 1) == [-inf, 4.5, inf]
    assert segment_cuts(10.0, 2, 2.0, 1) == [-inf, inf]  # the other worker is busy
    assert segment_cuts(1.5, 2, 2.0, 0) == [-inf, inf]  # too short to be worth it


def test_one_clips_tracking_never_leaks_into_the_next(
    one: PoseEngine, moving: PoseExtraction
) -> None:
    # The same worker process (one worker): a person, then no person, then the person again.
    one.extract_sync(V.moving_person(), max_seconds=MAX_S)
    empty = one.extract_sync(V.no_person(), max_seconds=MAX_S)
    assert np.isnan(empty.keypoints).all()
    again = one.extract_sync(V.moving_person(), max_seconds=MAX_S)
    assert np.array_equal(again.keypoints, moving.keypoints, equal_nan=True)


def test_npz_round_trip(moving: PoseExtraction) -> None:
    data = moving.to_npz()
    back = PoseExtraction.from_npz(data)
    assert np.array_equal(back.keypoints, moving.keypoints, equal_nan=True)
    assert np.array_equal(back.timestamps, moving.timestamps)
    assert (back.width, back.height, back.fps, back.duration_s) == (640, 480, 15.0, 4.0)
    seq = back.sequence()
    assert seq.frames == 60 and seq.aspect_ratio == pytest.approx(640 / 480)
    assert np.array_equal(seq.times, moving.timestamps)


def _npz(**arrays: object) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def _fields(ex: PoseExtraction, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "version": np.int32(1),
        "keypoints": ex.keypoints,
        "timestamps": ex.timestamps,
        "width": np.int32(640),
        "height": np.int32(480),
        "fps": np.float64(15),
        "duration_s": np.float64(4),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def _huge_header() -> bytes:
    """A keypoints member whose header claims 10^9 frames (and holds none)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, value in _fields(_small()).items():
            buf = io.BytesIO()
            if name == "keypoints":
                header = {"descr": "<f4", "fortran_order": False, "shape": (10**9, 33, 4)}
                np.lib.format.write_array_header_1_0(buf, header)
            else:
                np.save(buf, value)
            archive.writestr(f"{name}.npy", buf.getvalue())
    return out.getvalue()


def _small() -> PoseExtraction:
    kp = np.zeros((3, 33, 4), np.float32)
    return PoseExtraction(kp, np.array([0.0, 0.1, 0.2]), 640, 480, 15.0, 0.3)


@pytest.mark.parametrize(
    "make",
    [
        lambda ex: b"",
        lambda ex: b"PK\x03\x04 not a zip",
        lambda ex: V.TEXT,
        lambda ex: _npz(**_fields(ex, keypoints=np.array([object()], dtype=object))),
        lambda ex: _npz(**_fields(ex, keypoints=ex.keypoints.astype(np.float64))),
        lambda ex: _npz(**_fields(ex, keypoints=ex.keypoints[:, :17])),
        lambda ex: _npz(**_fields(ex, keypoints=np.full_like(ex.keypoints, np.inf))),
        lambda ex: _npz(**_fields(ex, timestamps=ex.timestamps[::-1].copy())),
        lambda ex: _npz(**_fields(ex, timestamps=ex.timestamps[:-1])),
        lambda ex: _npz(**_fields(ex, width=np.int32(0))),
        lambda ex: _npz(**_fields(ex, fps=np.float64(np.nan))),
        lambda ex: _npz(**_fields(ex, version=np.int32(2))),
        lambda ex: _npz(**_fields(ex, duration_s=None)),
        lambda ex: _npz(**_fields(ex, extra=np.zeros(3))),
        lambda ex: _huge_header(),
    ],
    ids=[
        "empty",
        "bad-zip",
        "text",
        "pickled-objects",
        "float64",
        "17-landmarks",
        "infinite",
        "time-backwards",
        "times-short",
        "zero-width",
        "nan-fps",
        "version-2",
        "missing-member",
        "extra-member",
        "huge-header",
    ],
)
def test_from_npz_refuses_a_malformed_payload(moving: PoseExtraction, make: object) -> None:
    with pytest.raises(ValueError, match=r"pose extraction|must|within|increasing|version"):
        PoseExtraction.from_npz(make(moving))  # type: ignore[operator]


def test_a_missing_model_file_is_model_unavailable(tmp_path: Path) -> None:
    engine = PoseEngine(PoseEngineConfig(model_path=str(tmp_path / "nope.task")), "pose-x")
    with pytest.raises(ModelUnavailable) as err:
        asyncio.run(engine.extract(V.moving_person(), max_seconds=MAX_S))
    assert err.value.status == 503 and "options.model" in err.value.message
    assert not engine.loaded and engine.failure is not None
    asyncio.run(engine.warm_up())  # logged, not raised
    engine.close()


def test_a_file_that_is_not_a_model_is_model_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "pose_landmarker_full.task"
    bad.write_bytes(b"not a model")
    engine = PoseEngine(PoseEngineConfig(model_path=str(bad), workers=1), "pose-bad")
    try:
        with pytest.raises(ModelUnavailable, match="cannot be loaded"):
            engine.load()
        assert not engine.loaded and "cannot be loaded" in (engine.failure or "")
    finally:
        engine.close(wait=True)


def test_a_bare_model_name_is_found_in_the_models_dir(tmp_path: Path) -> None:
    config = PoseEngineConfig.from_options({"model": "pose_landmarker_full.task"})
    models = str(Path(V.POSE_MODEL).parent)
    assert config.resolved_model_path({"MEGACITY_MODELS_DIR": models}) == Path(V.POSE_MODEL)
    missing = config.resolved_model_path({"MEGACITY_MODELS_DIR": str(tmp_path)})
    assert missing == Path(os.getcwd(), "pose_landmarker_full.task")


def test_options_are_validated() -> None:
    config = PoseEngineConfig.from_options({"model": "pose.task", "fps": 30, "workers": 0})
    assert (config.model_path, config.fps, config.worker_count) == ("pose.task", 30, os.cpu_count())
    for options, message in [
        ({"modle": "x"}, "unknown option 'modle'"),
        ({"model": "a", "model_path": "b"}, "not both"),
        ({"model": ""}, "model must be"),
        ({"fps": 0}, "fps"),
        ({"fps": "15"}, "fps"),
        ({"workers": -1}, "workers"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"min_tracking_confidence": 1.5}, "min_tracking_confidence"),
        ({"split_min_s": -1}, "split_min_s"),
        ({"warmup": "yes"}, "warmup"),
    ]:
        with pytest.raises(ValueError, match=message):
            PoseEngineConfig.from_options(options)


def test_bad_videos_get_their_4xx_and_extractions_run_side_by_side(one: PoseEngine) -> None:
    async def many() -> list[PoseExtraction | BaseException]:
        return await asyncio.gather(
            one.extract(V.TEXT, max_seconds=MAX_S),
            one.extract(V.moving_person(), max_seconds=2.0),
            *(one.extract(V.no_person(), max_seconds=MAX_S) for _ in range(3)),
            return_exceptions=True,
        )

    results = asyncio.run(many())
    assert isinstance(results[0], MegaCityError) and results[0].code == "unsupported_video"
    assert isinstance(results[1], MegaCityError) and results[1].code == "video_too_long"
    assert all(isinstance(r, PoseExtraction) and r.persons == 0 for r in results[2:])
    assert one.running == 0 and one.waiting == 0


def test_workers_leave_when_the_router_is_killed() -> None:
    script = (
        "import sys, time\n"
        "from megacity.engines.pose import PoseEngine, PoseEngineConfig\n"
        "e = PoseEngine(PoseEngineConfig(model_path=sys.argv[1], workers=2))\n"
        "e.load()\n"
        "print(*e._processes._processes, flush=True)\n"
        "time.sleep(60)\n"
    )
    router = subprocess.Popen(
        [sys.executable, "-c", script, V.POSE_MODEL], stdout=subprocess.PIPE, cwd=V.ROOT
    )
    try:
        assert router.stdout is not None
        workers = [int(pid) for pid in router.stdout.readline().split()]
        assert len(workers) == 2
    finally:
        router.kill()
        router.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for its new parent is gone
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

"""The face engine with real MediaPipe and Google's face_landmarker.task on a real photo.

`skimage.data.astronaut()` smiles (MediaPipe: mouthSmile ≈ 0.9, models README); the same
photo mirrored turns the head the other way; a plain canvas has no face.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from megacity.engines.errors import ModelUnavailable
from megacity.engines.face import FaceEngine, FaceEngineConfig
from megacity.scoring.expression import summarize
from tests import video as V

FACE_MODEL = str((V.SHARED / "models" / "face_landmarker.task").resolve())


@pytest.fixture(scope="module")
def engine() -> Iterator[FaceEngine]:
    e = FaceEngine(FaceEngineConfig.from_options({"model": FACE_MODEL, "fps": 5}))
    yield e
    e.close()


def test_the_astronaut_smiles_and_a_mirror_turns_her_head(engine: FaceEngine) -> None:
    photo = V.astronaut()
    track = asyncio.run(engine.images([photo, np.ascontiguousarray(photo[:, ::-1])]))
    assert track.frames == track.faces == 2
    s = summarize(track.times, track.blendshapes, track.names, track.matrices)
    assert s.expressions["smile"].mean > 0.7 and s.expressions["smile"].share == 1.0
    assert s.expressions["frown"].peak < 0.2
    from megacity.scoring.expression import head_angles

    (yaw, _, roll), (yaw_m, _, roll_m) = head_angles(track.matrices)
    assert abs(yaw) < 5 and abs(yaw_m) < 5  # a frontal face, both ways
    assert abs(roll) > 2 and roll_m == pytest.approx(-roll, abs=1.5)  # mirrored: tilted back


def test_a_video_of_the_photo_smiles_in_every_sampled_frame(engine: FaceEngine) -> None:
    track = asyncio.run(engine.video(V.still_person(seconds=2.0), max_seconds=60))
    assert 9 <= track.frames <= 11  # 2 s at 5 fps
    assert track.faces == track.frames
    s = summarize(track.times, track.blendshapes, track.names, track.matrices)
    [smile] = [seg for seg in s.segments if seg.expression == "smile"]
    assert smile.start_s == 0.0 and smile.end_s >= 1.6


def test_no_face_in_a_blank_video(engine: FaceEngine) -> None:
    track = asyncio.run(engine.video(V.no_person(), max_seconds=60))
    assert track.frames > 0 and track.faces == 0
    assert np.isnan(track.blendshapes).all()


def test_a_missing_model_is_model_unavailable(tmp_path: Path) -> None:
    e = FaceEngine(FaceEngineConfig(model_path=str(tmp_path / "nope.task")))
    with pytest.raises(ModelUnavailable) as info:
        asyncio.run(e.images([V.astronaut()]))
    assert "face_landmarker.task" in info.value.message and e.failure is not None
    e.close()


@pytest.mark.parametrize(
    "options",
    [{"fps": 0}, {"fps": "5"}, {"min_detection_confidence": 2}, {"bogus": 1}, {"model": ""}],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaceEngineConfig.from_options(options)

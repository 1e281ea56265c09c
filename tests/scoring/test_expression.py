"""Expression over time from blendshapes and head pose: table tests on made-up tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from megacity.scoring.expression import BLENDSHAPE_NAMES, head_angles, summarize

COL = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}


def _track(frames: int, **series: list[float]) -> np.ndarray:
    scores = np.full((frames, len(BLENDSHAPE_NAMES)), 0.05)
    for name, values in series.items():
        scores[:, COL[name]] = values
    return scores


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = ry @ rx @ rz
    return m


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (20, -10, 5), (-35, 15, -8)])
def test_head_angles_invert_the_rotation(yaw: float, pitch: float, roll: float) -> None:
    angles = head_angles(_rotation(yaw, pitch, roll)[None])[0]
    assert angles == pytest.approx([yaw, pitch, roll], abs=1e-6)


def test_a_smile_in_the_middle_of_a_clip_is_one_segment() -> None:
    times = np.arange(10) * 0.5
    smile = [0.0, 0.1, 0.8, 0.9, 0.85, 0.1, 0.0, 0.0, 0.0, 0.0]
    s = summarize(times, _track(10, mouthSmileLeft=smile, mouthSmileRight=smile), BLENDSHAPE_NAMES)
    assert s.face_frames == 10 and s.presence == 1.0
    assert s.expressions["smile"].share == pytest.approx(0.3)
    assert s.expressions["smile"].peak == pytest.approx(0.9)
    [segment] = [x for x in s.segments if x.expression == "smile"]
    assert (segment.start_s, segment.end_s, segment.peak) == (1.0, 2.0, pytest.approx(0.9))


def test_frames_without_a_face_count_for_presence_only() -> None:
    scores = _track(4, jawOpen=[0.6, 0.6, 0.6, 0.6])
    scores[1:3] = np.nan
    s = summarize(np.arange(4.0), scores, BLENDSHAPE_NAMES)
    assert (s.frames, s.face_frames, s.presence) == (4, 2, 0.5)
    assert s.expressions["jaw_open"].share == 1.0
    # a face lost in between ends the segment
    assert [(x.start_s, x.end_s) for x in s.segments if x.expression == "jaw_open"] == [
        (0.0, 0.0),
        (3.0, 3.0),
    ]


def test_blinks_are_counted_per_minute_on_clips_only() -> None:
    times = np.arange(40) * 0.25  # 10 s
    blink = [0.9 if i in (4, 5, 20, 33) else 0.05 for i in range(40)]
    s = summarize(times, _track(40, eyeBlinkLeft=blink, eyeBlinkRight=blink), BLENDSHAPE_NAMES)
    assert s.blinks_per_min == pytest.approx(3 * 60 / 9.75)
    photo = summarize(np.zeros(1), _track(1), BLENDSHAPE_NAMES)
    assert photo.blinks_per_min is None


def test_head_pose_summary_and_no_face_at_all() -> None:
    matrices = np.stack([_rotation(10, 0, 0), _rotation(30, 0, 0)])
    s = summarize(np.arange(2.0), _track(2), BLENDSHAPE_NAMES, matrices)
    assert s.head is not None
    assert (s.head.yaw, s.head.yaw_range) == (pytest.approx(20), pytest.approx(20))
    empty = summarize(np.arange(3.0), np.full((3, len(BLENDSHAPE_NAMES)), np.nan), BLENDSHAPE_NAMES)
    assert (empty.face_frames, empty.presence, empty.expressions, empty.head) == (0, 0.0, {}, None)
    assert empty.to_dict()["segments"] == []


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError):
        summarize(np.arange(3.0), np.zeros((2, len(BLENDSHAPE_NAMES))), BLENDSHAPE_NAMES)

"""Landmark layout, COCO-17 mapping and PoseSequence validation."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from megacity.scoring import pose as P
from megacity.scoring.pose import (
    BODY_PARTS,
    COCO17_NAMES,
    COCO_TO_BLAZEPOSE,
    MAX_FRAMES,
    MIRROR_INDEX,
    PART_LANDMARKS,
    PART_NAMES,
    PoseSequence,
    coco17_to_blazepose,
    to_blazepose,
)


def test_blazepose_indices_match_mediapipe() -> None:
    assert (P.NOSE, P.LEFT_SHOULDER, P.RIGHT_SHOULDER) == (0, 11, 12)
    assert (P.LEFT_WRIST, P.LEFT_HIP, P.RIGHT_KNEE, P.RIGHT_FOOT_INDEX) == (15, 23, 26, 32)


def test_mirror_swaps_left_and_right_only() -> None:
    assert sorted(MIRROR_INDEX) == list(range(33))
    assert all(MIRROR_INDEX[MIRROR_INDEX[i]] == i for i in range(33))
    assert MIRROR_INDEX[P.NOSE] == P.NOSE
    assert MIRROR_INDEX[P.LEFT_EAR] == P.RIGHT_EAR and MIRROR_INDEX[P.LEFT_EYE] == P.RIGHT_EYE
    assert MIRROR_INDEX[P.LEFT_WRIST] == P.RIGHT_WRIST
    assert MIRROR_INDEX[P.RIGHT_FOOT_INDEX] == P.LEFT_FOOT_INDEX


def test_parts_cover_every_landmark_and_have_names() -> None:
    assert set(PART_LANDMARKS) == set(BODY_PARTS) == set(PART_NAMES)
    covered = {i for part in PART_LANDMARKS.values() for i in part}
    assert covered == set(range(33))


def test_coco17_maps_to_the_same_named_landmarks() -> None:
    assert len(COCO_TO_BLAZEPOSE) == len(COCO17_NAMES) == 17
    for name, index in zip(COCO17_NAMES, COCO_TO_BLAZEPOSE, strict=True):
        assert getattr(P, name.upper()) == index


def test_coco17_conversion_fills_missing_landmarks_with_zero_visibility() -> None:
    coco = np.random.default_rng(0).random((5, 17, 3))
    out = coco17_to_blazepose(coco)
    assert out.shape == (5, 33, 4)
    assert np.allclose(out[:, P.LEFT_WRIST, :2], coco[:, 9, :2])
    assert np.allclose(out[:, P.LEFT_WRIST, 3], coco[:, 9, 2])
    assert (out[:, P.LEFT_INDEX, 3] == 0).all() and np.isnan(out[:, P.LEFT_INDEX, 0]).all()


def test_movenet_yx_order_is_swapped() -> None:
    movenet = np.zeros((1, 17, 3))
    movenet[0, 0] = (0.2, 0.7, 0.9)  # y, x, score
    out = coco17_to_blazepose(movenet, yx=True)
    assert tuple(out[0, P.NOSE]) == (0.7, 0.2, 0.0, 0.9)


def test_no_person_rows_stay_missing_after_conversion() -> None:
    coco = np.full((2, 17, 3), np.nan)
    out = coco17_to_blazepose(coco)
    assert np.isnan(out[:, :, 0]).all()


def test_to_blazepose_accepts_33_by_3() -> None:
    kp = np.random.default_rng(1).random((4, 33, 3))
    out = to_blazepose(kp)
    assert out.shape == (4, 33, 4) and (out[:, :, 2] == 0).all()
    assert np.array_equal(out[:, :, 3], kp[:, :, 2])


def test_pose_sequence_is_read_only_and_timed() -> None:
    kp = np.random.default_rng(2).random((10, 33, 4))
    seq = PoseSequence(kp, fps=20)
    assert seq.frames == 10 and seq.times[3] == pytest.approx(0.15)
    with pytest.raises(ValueError):
        seq.keypoints[0, 0, 0] = 1.0
    kp[0, 0, 0] = 5.0  # the caller's array is copied, not kept
    assert seq.keypoints[0, 0, 0] != 5.0
    moved = dataclasses.replace(seq, aspect_ratio=16 / 9)
    assert moved.times[3] == pytest.approx(0.15)


def test_timestamps_are_used_when_given() -> None:
    ts = np.array([0.0, 0.03, 0.07, 0.1])
    seq = PoseSequence(np.zeros((4, 33, 4)), timestamps=ts)
    assert np.array_equal(seq.times, ts)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "timestamps or fps"),
        ({"fps": 0.0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"fps": 1000.0}, "fps"),
        ({"timestamps": np.array([0.0, 0.1, 0.1])}, "increasing"),
        ({"timestamps": np.array([0.0, 0.1])}, "shape"),
        ({"timestamps": np.array([0.0, np.inf, 1.0])}, "finite"),
        ({"timestamps": np.array([0.0, 1e-5, 2e-5])}, "frames per second"),
        ({"fps": 30.0, "aspect_ratio": 0.0}, "aspect_ratio"),
    ],
)
def test_bad_timing_raises(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PoseSequence(np.zeros((3, 33, 4)), **kwargs)


def test_too_many_frames_raise() -> None:
    with pytest.raises(ValueError, match=str(MAX_FRAMES)):
        PoseSequence(np.zeros((MAX_FRAMES + 1, 17, 3)), fps=30)


def test_nan_is_missing_but_inf_is_refused() -> None:
    kp = np.zeros((3, 33, 4))
    kp[1] = np.nan
    PoseSequence(kp, fps=30)
    kp[2, 5, 1] = -np.inf
    with pytest.raises(ValueError, match="infinite"):
        PoseSequence(kp, fps=30)

"""Normalisation, features, gap filling and error descriptions on hand-built poses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from megacity.scoring import pose as P
from megacity.scoring.motion import (
    FEATURE_DIM,
    FEATURES,
    HIP_MID,
    SHOULDER_MID,
    Motion,
    extract_motion,
    fill_short_gaps,
    landmark_weights,
    normalize_frames,
    part_deviation,
)
from megacity.scoring.pose import MIRROR_INDEX, PoseSequence

# A dancer facing the camera (their left = image right): left arm out to the side,
# right arm hanging down, legs apart. Image coordinates, y down.
_STAND = {
    P.NOSE: (0.50, 0.20), P.LEFT_EYE_INNER: (0.51, 0.19), P.LEFT_EYE: (0.52, 0.19),
    P.LEFT_EYE_OUTER: (0.53, 0.19), P.RIGHT_EYE_INNER: (0.49, 0.19), P.RIGHT_EYE: (0.48, 0.19),
    P.RIGHT_EYE_OUTER: (0.47, 0.19), P.LEFT_EAR: (0.54, 0.20), P.RIGHT_EAR: (0.46, 0.20),
    P.MOUTH_LEFT: (0.51, 0.22), P.MOUTH_RIGHT: (0.49, 0.22),
    P.LEFT_SHOULDER: (0.60, 0.30), P.RIGHT_SHOULDER: (0.40, 0.30),
    P.LEFT_ELBOW: (0.72, 0.30), P.RIGHT_ELBOW: (0.40, 0.42),
    P.LEFT_WRIST: (0.84, 0.30), P.RIGHT_WRIST: (0.40, 0.54),
    P.LEFT_PINKY: (0.87, 0.31), P.RIGHT_PINKY: (0.41, 0.57),
    P.LEFT_INDEX: (0.88, 0.30), P.RIGHT_INDEX: (0.40, 0.58),
    P.LEFT_THUMB: (0.86, 0.29), P.RIGHT_THUMB: (0.39, 0.57),
    P.LEFT_HIP: (0.56, 0.55), P.RIGHT_HIP: (0.44, 0.55),
    P.LEFT_KNEE: (0.60, 0.70), P.RIGHT_KNEE: (0.40, 0.70),
    P.LEFT_ANKLE: (0.62, 0.85), P.RIGHT_ANKLE: (0.38, 0.85),
    P.LEFT_HEEL: (0.61, 0.87), P.RIGHT_HEEL: (0.39, 0.87),
    P.LEFT_FOOT_INDEX: (0.66, 0.88), P.RIGHT_FOOT_INDEX: (0.34, 0.88),
}  # fmt: skip


def standing(frames: int = 4) -> np.ndarray:
    kp = np.zeros((frames, 33, 4))
    for i, xy in _STAND.items():
        kp[:, i, :2] = xy
    kp[:, :, 3] = 0.99
    return kp


def motion(kp: np.ndarray, **kwargs: Any) -> Motion:
    return extract_motion(PoseSequence(kp, fps=30), **kwargs)


def test_frames_are_hip_centred_in_torso_units() -> None:
    m = motion(standing())
    assert np.allclose(m.points[:, HIP_MID], 0.0)
    assert np.allclose(np.linalg.norm(m.points[:, SHOULDER_MID], axis=1), 1.0)
    assert m.present.all() and m.features.shape == (4, FEATURE_DIM)


def test_features_ignore_camera_distance_and_position() -> None:
    kp = standing()
    moved = kp.copy()
    moved[:, :, :2] = kp[:, :, :2] * 0.4 + np.array([0.3, -0.1])
    a, b = motion(kp), motion(moved)
    assert np.allclose(a.features, b.features) and np.allclose(a.points, b.points)


def test_features_are_unit_vectors() -> None:
    m = motion(standing())
    norms = np.linalg.norm(m.features.reshape(4, len(FEATURES), 2), axis=2)
    assert np.allclose(norms[m.feature_weights > 0], 1.0)


def test_straight_arm_has_elbow_angle_of_pi() -> None:
    m = motion(standing(1))
    k = [f.name for f in FEATURES].index("left_elbow_angle")
    assert np.allclose(m.features[0, 2 * k : 2 * k + 2], (-1.0, 0.0))


def test_aspect_ratio_puts_x_and_y_on_one_scale() -> None:
    square = standing()
    wide = square.copy()
    wide[:, :, 0] = (square[:, :, 0] - 0.5) * 9 / 16 + 0.5  # same scene filmed 16:9
    a = motion(square)
    b = extract_motion(PoseSequence(wide, fps=30, aspect_ratio=16 / 9))
    assert np.allclose(a.features, b.features)


def test_one_hidden_side_uses_the_other_for_centre_and_scale() -> None:
    kp = standing()
    kp[:, [P.LEFT_SHOULDER, P.LEFT_HIP], 3] = 0.1
    m = motion(kp)
    assert m.present.all()
    assert np.allclose(m.points[:, P.RIGHT_HIP], 0.0)
    assert np.allclose(np.linalg.norm(m.points[:, P.RIGHT_SHOULDER], axis=1), 1.0)
    upper = [f.name for f in FEATURES].index("left_upper_arm")
    assert (m.feature_weights[:, upper] == 0).all()


def test_mirror_swaps_sides_and_flips_x() -> None:
    kp = standing()
    flipped = kp[:, list(MIRROR_INDEX)].copy()
    flipped[:, :, 0] = 1.0 - flipped[:, :, 0]
    assert np.allclose(motion(flipped, mirror=True).features, motion(kp).features)
    assert not np.allclose(motion(flipped).features, motion(kp).features)


def test_short_gaps_are_interpolated_long_ones_left_out() -> None:
    kp = standing(40)
    kp[:, P.LEFT_WRIST, 1] = np.linspace(0.2, 0.6, 40)
    kp[5:8] = np.nan  # 0.13 s
    kp[20:35] = np.nan  # 0.53 s
    m = motion(kp, max_gap_s=0.3)
    assert m.present[5:8].all() and not m.present[20:35].any()
    assert np.isnan(m.points[20:35]).all() and (m.weights[20:35] == 0).all()
    assert (m.feature_weights[20:35] == 0).all() and (m.features[20:35] == 0).all()
    truth = standing(40)
    truth[:, P.LEFT_WRIST, 1] = np.linspace(0.2, 0.6, 40)
    assert np.allclose(m.points[5:8], motion(truth).points[5:8])  # the wrist moved linearly


def test_fill_short_gaps_is_linear_in_time() -> None:
    times = np.array([0.0, 0.1, 0.2, 0.4])
    xy = np.array([[[0.0, 0.0]], [[np.nan, np.nan]], [[np.nan, np.nan]], [[4.0, 8.0]]])
    w = np.array([[1.0], [0.0], [0.0], [0.5]])
    filled, wf = fill_short_gaps(xy, w, times, max_gap_s=0.5)
    assert np.allclose(filled[:, 0], [[0, 0], [1, 2], [2, 4], [4, 8]])
    assert np.allclose(wf[:, 0], [1.0, 0.875, 0.75, 0.5])
    untouched, _ = fill_short_gaps(xy, w, times, max_gap_s=0.3)
    assert np.isnan(untouched[1:3]).all()


def test_visibility_ramp() -> None:
    w = landmark_weights(np.array([0.0, 0.3, 0.5, 0.7, 1.0, np.nan]), 0.3, 0.7)
    assert np.allclose(w, [0.0, 0.0, 0.5, 1.0, 1.0, 0.0])


def test_bending_forward_does_not_blow_up_the_scale() -> None:
    xy = standing(3)[:, :, :2].copy()
    xy[2, [P.LEFT_SHOULDER, P.RIGHT_SHOULDER], 1] = 0.54  # torso seen edge-on
    points, present = normalize_frames(xy, np.ones((3, 33)))
    assert present.all()
    assert np.abs(points[2]).max() < 3 * np.abs(points[0]).max()


def test_no_person_frames_are_not_present() -> None:
    kp = standing(3)
    kp[1] = np.nan
    m = motion(kp, max_gap_s=0.0)
    assert list(m.present) == [True, False, True]


@pytest.mark.parametrize(
    ("change", "part", "issue"),
    [
        ({P.LEFT_ELBOW: (0.66, 0.40), P.LEFT_WRIST: (0.70, 0.52)}, "left_arm", "too_low"),
        ({P.LEFT_ELBOW: (0.68, 0.20), P.LEFT_WRIST: (0.76, 0.10)}, "left_arm", "too_high"),
        ({P.LEFT_WRIST: (0.72, 0.18)}, "left_arm", "too_bent"),
        ({P.RIGHT_ELBOW: (0.36, 0.41), P.RIGHT_WRIST: (0.25, 0.46)}, "right_arm", "too_wide"),
        ({P.LEFT_KNEE: (0.66, 0.62), P.LEFT_ANKLE: (0.76, 0.52)}, "left_leg", "too_high"),
    ],
)
def test_part_deviation_names_the_direction(
    change: dict[int, tuple[float, float]], part: str, issue: str
) -> None:
    kp = standing(2)
    for i, xy in change.items():
        kp[:, i, :2] = xy
    got, strength = part_deviation(motion(kp).points, motion(standing(2)).points, part)
    assert got == issue and strength >= 0.5


def test_part_deviation_of_a_lean_uses_the_dancers_own_left() -> None:
    kp = standing(2)
    kp[:, [P.LEFT_SHOULDER, P.RIGHT_SHOULDER, P.LEFT_ELBOW, P.RIGHT_ELBOW], 0] += 0.15
    kp[:, : P.MOUTH_RIGHT + 1, 0] += 0.15
    issue, _ = part_deviation(motion(kp).points, motion(standing(2)).points, "torso")
    assert issue == "lean_left"  # image right is the dancer's left when facing the camera
    same, strength = part_deviation(motion(standing(2)).points, motion(standing(2)).points, "torso")
    assert same == "off" and strength == 0.0

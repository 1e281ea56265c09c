"""Dance score calibration on synthetic dancers, plus explanation, shapes and hostile input."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from megacity.scoring.dance import part_time_errors, score_dance
from megacity.scoring.dance_types import (
    SCORE_ANCHORS,
    DanceConfig,
    DanceResult,
    error_to_degrees,
    score_from_error,
)
from megacity.scoring.pose import (
    BODY_PARTS,
    COCO_TO_BLAZEPOSE,
    MAX_FRAMES,
    PoseSequence,
)
from tests.scoring.dancers import FPS, SECONDS, dancer, mirrored, seq, times

REFERENCE = seq(dancer(1))


# --- calibration: every case of the score map's documentation, measured -----------------


def test_identical_dance_scores_100() -> None:
    result = score_dance(REFERENCE, REFERENCE)
    assert result.score == pytest.approx(100.0)
    assert all(v == pytest.approx(100.0) for v in result.parts.values())
    assert result.timing.offset_ms == 0.0 and result.timing.tempo_ratio == pytest.approx(1.0)
    assert result.worst_moments == ()


@pytest.mark.parametrize("stretch", [0.8, 0.9, 1.1, 1.25])
def test_time_stretched_dance_scores_at_least_90(stretch: float) -> None:
    t = times(SECONDS * stretch)
    result = score_dance(seq(dancer(1, t / stretch)), REFERENCE)
    assert result.score >= 90
    assert result.timing.tempo_ratio == pytest.approx(stretch, rel=0.03)


@pytest.mark.parametrize("shift_s", [-0.3, 0.2, 0.5, 1.5])
def test_shifted_dance_scores_at_least_90_and_reports_the_lag(shift_s: float) -> None:
    result = score_dance(seq(dancer(1, times() - shift_s)), REFERENCE)
    assert result.score >= 90
    assert result.timing.offset_ms == pytest.approx(shift_s * 1000, abs=1000 / FPS + 1)


def test_scaled_translated_and_other_fps_dance_scores_at_least_90() -> None:
    kp = dancer(1)
    kp[:, :, :2] = (kp[:, :, :2] - 0.5) * 0.5 + np.array([0.3, 0.4])
    assert score_dance(seq(kp), REFERENCE).score >= 99
    assert score_dance(seq(dancer(1, times(fps=24)), fps=24), REFERENCE).score >= 90


def test_variable_frame_rate_timestamps_score_at_least_90() -> None:
    steps = np.random.default_rng(3).uniform(1 / 36, 1 / 24, int(SECONDS * FPS))
    t = np.cumsum(steps) - steps[0]
    result = score_dance(PoseSequence(dancer(1, t), timestamps=t), REFERENCE)
    assert result.score >= 90 and abs(result.timing.offset_ms) < 50


def test_mirror_option_decides_whether_a_mirrored_dance_counts() -> None:
    attempt = seq(mirrored(dancer(1)))
    off = score_dance(attempt, REFERENCE, DanceConfig(mirror="off"))
    on = score_dance(attempt, REFERENCE, DanceConfig(mirror="on"))
    auto = score_dance(attempt, REFERENCE, DanceConfig(mirror="auto"))
    assert on.score >= 90 and auto.score >= 90 and auto.mirrored and on.mirrored
    assert off.score < 60 and not off.mirrored
    assert not score_dance(REFERENCE, REFERENCE, DanceConfig(mirror="auto")).mirrored


def test_one_arm_wrong_for_two_seconds_is_found_and_explained() -> None:
    result = score_dance(seq(dancer(1, left_arm_down=(4.0, 6.0))), REFERENCE)
    assert 60 < result.score < 95
    scores = {p: s for p, s in result.parts.items() if s is not None}
    assert min(scores, key=lambda p: scores[p]) == "left_arm"
    worst = result.worst_moments[0]
    assert worst.part == "left_arm" and worst.issue == "too_low"
    assert worst.start_s <= 4.5 and worst.end_s >= 5.5
    assert worst.en == "left arm too low" and worst.ko == "왼팔이 너무 낮아요"
    # The peak lies inside the moment; the same dance at the same tempo matches ~the same time.
    assert worst.start_s <= worst.peak_s <= worst.end_s
    assert abs(worst.reference_s - worst.peak_s) < 0.2
    advice = [f for f in result.feedback if f.part == "left_arm"]
    assert advice[0].en == "Raise your left arm higher at 0:04."
    assert advice[0].ko == "0:04에 왼팔을 더 높이 드세요."
    low = [p.score for p in result.timeline if 4 <= p.start_s < 6]
    high = [p.score for p in result.timeline if p.start_s < 3 or p.start_s >= 7]
    assert max(x for x in low if x is not None) < min(x for x in high if x is not None)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_a_different_dance_scores_at_most_50(seed: int) -> None:
    assert score_dance(seq(dancer(seed)), REFERENCE).score <= 50


def test_random_keypoints_score_at_most_10() -> None:
    noise = np.random.default_rng(0).random((int(SECONDS * FPS), 33, 4))
    noise[:, :, 3] = 0.9
    assert score_dance(seq(noise), REFERENCE).score <= 10


def test_smaller_moves_with_a_small_lag_still_score_well() -> None:
    kp = dancer(1, times() - 0.15, amplitude=0.6)
    kp[:, :, :2] += np.random.default_rng(1).normal(0, 0.004, kp[:, :, :2].shape)
    assert 75 <= score_dance(seq(kp), REFERENCE).score < 97


def test_score_map_is_monotone_and_documented() -> None:
    assert score_from_error(0.0) == 100.0 and score_from_error(90.0) == 0.0
    values = [score_from_error(d) for d in np.linspace(0, 90, 91)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert [s for _, s in SCORE_ANCHORS] == sorted((s for _, s in SCORE_ANCHORS), reverse=True)
    assert error_to_degrees(0.0) == 0.0 and error_to_degrees(1.0) == pytest.approx(90.0)


# --- missing people, other layouts, output shape -----------------------------------------


def test_frames_without_a_person_are_ignored() -> None:
    kp = dancer(1)
    kp[100:106] = np.nan  # 0.2 s: interpolated
    kp[200:260] = np.nan  # 2 s: not scored
    result = score_dance(seq(kp), REFERENCE)
    assert result.score >= 95
    assert result.coverage == pytest.approx(1 - 60 / len(kp))
    assert all(p.score is None for p in result.timeline if 7 <= p.start_s < 8)


def test_coco17_input_maps_and_scores() -> None:
    coco = dancer(1, times(fps=25))[:, list(COCO_TO_BLAZEPOSE)][:, :, [0, 1, 3]]
    result = score_dance(seq(coco, fps=25), REFERENCE)
    assert result.score >= 90 and all(v is not None for v in result.parts.values())
    different = dancer(2)[:, list(COCO_TO_BLAZEPOSE)][:, :, [0, 1, 3]]
    assert score_dance(seq(different), REFERENCE).score <= 50


def test_hidden_legs_give_no_leg_score() -> None:
    kp = dancer(1)
    kp[:, [25, 26, 27, 28, 29, 30, 31, 32], 3] = 0.05
    result = score_dance(seq(kp), REFERENCE)
    assert result.parts["left_leg"] is None and result.parts["right_leg"] is None
    assert result.score >= 95


def test_timeline_per_beat_and_heatmap_matrix() -> None:
    attempt = seq(dancer(1, left_arm_down=(4.0, 6.0)))
    result = score_dance(attempt, REFERENCE, DanceConfig(bpm=120))
    assert len(result.timeline) == 24 and result.timeline[1].start_s == pytest.approx(0.5)
    heat = part_time_errors(attempt, REFERENCE)
    assert heat.parts == BODY_PARTS and heat.errors_deg.shape == (6, 12) and heat.bin_s == 1.0
    arm = heat.errors_deg[BODY_PARTS.index("left_arm")]
    assert int(np.argmax(arm)) in (4, 5) and arm[0] < 5


def test_a_still_pose_has_no_timing_and_is_matched_by_its_pose() -> None:
    still = np.repeat(dancer(1)[:1], 120, axis=0)
    result = score_dance(seq(still + 0.002), seq(still))  # the same pose, a little apart
    assert result.score >= 95 and result.match.same_choreography
    assert result.match.motion_agreement is None  # nothing moves: nothing to agree on
    assert (result.timing.offset_ms, result.timing.tempo_ratio) == (None, None)
    assert result.timing.reason == "still_pose"
    assert not any("behind" in f.en or "ahead" in f.en for f in result.feedback)
    noise = np.random.default_rng(0).random((120, 33, 4))
    noise[:, :, 3] = 0.9
    other = score_dance(seq(noise), seq(still))  # nothing like the pose: judged by the poses
    assert not other.match.same_choreography and other.timing.reason == "still_pose"


def test_to_dict_is_json_ready() -> None:
    kp = dancer(1, left_arm_down=(4.0, 6.0))
    kp[200:260] = np.nan
    result = score_dance(seq(kp), REFERENCE)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(data) >= {"score", "parts", "timing", "timeline", "worst_moments", "feedback",
                         "moves", "match"}  # fmt: skip
    assert set(data["moves"]) == {"perfect", "good", "ok", "miss"}
    assert data["match"]["same_choreography"] is True and data["timing"]["reason"] is None
    assert {p["rating"] for p in data["timeline"]} <= {"perfect", "good", "ok", "miss", None}
    assert data["worst_moments"][0]["part"] == "left_arm"
    assert data["feedback"][0]["ko"] and data["feedback"][0]["en"]
    assert len(data["heatmap"]["errors_deg"]) == 6 and None in data["heatmap"]["errors_deg"][0]
    assert isinstance(result, DanceResult) and math.isfinite(data["score"])


# --- hostile input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keypoints", "message"),
    [
        (np.zeros((10, 20, 4)), "shape"),
        (np.zeros((10, 33)), "3-D"),
        (np.zeros((0, 33, 4)), "frames"),
        (np.zeros((MAX_FRAMES + 1, 33, 4)), "frames"),
        (np.full((10, 33, 4), np.inf), "infinite"),
        (np.full((10, 33, 4), 2.0), "visibility"),
        (np.full((10, 33, 4), 1e9), "coordinates"),
    ],
)
def test_hostile_keypoints_raise_clear_errors(keypoints: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PoseSequence(keypoints, fps=30)


def test_nobody_in_the_video_raises() -> None:
    with pytest.raises(ValueError, match="attempt: a person is visible in only 0"):
        score_dance(seq(np.full((30, 33, 4), np.nan)), REFERENCE)


def test_bad_config_raises() -> None:
    for bad in ({"mirror": "sideways"}, {"band_fraction": 2.0}, {"bpm": 5.0}, {"bin_s": 0.0}):
        with pytest.raises(ValueError, match="DanceConfig"):
            DanceConfig(**bad)

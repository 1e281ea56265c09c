"""The graded calibration table: on choreographies of known tempo and limb amplitudes, each
more severe mistake scores lower than the milder one, a learner right most of the time
scores like one, and another dance is told so (``choreography.py``, not ``dancers.py``)."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest

from megacity.scoring.dance import score_dance
from megacity.scoring.dance_types import RATING_NAMES, DanceConfig, DanceResult
from tests.scoring.choreography import choreography, jittered, noise, perform, seq

SECONDS = 8.0
# (seed, bpm, arm amplitude, leg amplitude): big arms and small legs, the other way round,
# everything big and slow, everything small and fast.
DANCES = [(11, 100.0, 1.0, 0.6), (12, 128.0, 0.6, 1.0), (13, 90.0, 1.2, 1.2), (14, 140.0, 0.7, 0.7)]
ARMS = ("left_arm", "right_arm")


def _cases(seed: int, bpm: float, arm: float, leg: float) -> dict[str, np.ndarray]:
    dance = choreography(seed, bpm=bpm, arm_amp=arm, leg_amp=leg)
    other = choreography(seed + 100, bpm=bpm, arm_amp=arm, leg_amp=leg)
    return {
        "identical": perform(dance, SECONDS),
        "jitter": jittered(perform(dance, SECONDS)),
        "tempo drift": perform(dance, SECONDS, tempo=(0.9, 1.1)),
        "one limb 0.5 s": perform(dance, SECONDS, wrong={"left_arm": (3.0, 3.5)}),
        "one limb 1 s": perform(dance, SECONDS, wrong={"left_arm": (3.0, 4.0)}),
        "one limb 2 s": perform(dance, SECONDS, wrong={"left_arm": (3.0, 5.0)}),
        "one limb 4 s": perform(dance, SECONDS, wrong={"left_arm": (2.0, 6.0)}),
        "two limbs 2 s": perform(dance, SECONDS, wrong=dict.fromkeys(ARMS, (3.0, 5.0))),
        "joints 10°": perform(dance, SECONDS, joint_offset_deg=10),
        "joints 20°": perform(dance, SECONDS, joint_offset_deg=20),
        "joints 30°": perform(dance, SECONDS, joint_offset_deg=30),
        "different dance": perform(other, SECONDS),
        "noise": noise(round(SECONDS * 30)),
    }


# (milder, more severe): every pair must score strictly lower on its right.
SEVERITY = [
    ("identical", "jitter"),
    ("identical", "tempo drift"),
    ("one limb 0.5 s", "one limb 1 s"),
    ("one limb 1 s", "one limb 2 s"),
    ("one limb 2 s", "one limb 4 s"),
    ("one limb 2 s", "two limbs 2 s"),
    ("identical", "joints 10°"),
    ("joints 10°", "joints 20°"),
    ("joints 20°", "joints 30°"),
    ("jitter", "one limb 0.5 s"),
    ("tempo drift", "one limb 0.5 s"),
    ("one limb 4 s", "different dance"),
    ("two limbs 2 s", "different dance"),
    ("different dance", "noise"),
]
SAME_DANCE = [name for name in _cases(*DANCES[0]) if name not in ("different dance", "noise")]


@cache
def _table(dance: int) -> dict[str, DanceResult]:
    seed, bpm, arm, leg = DANCES[dance]
    reference = seq(perform(choreography(seed, bpm=bpm, arm_amp=arm, leg_amp=leg), SECONDS))
    config = DanceConfig(bpm=bpm, title="Calibration")
    return {
        name: score_dance(seq(kp), reference, config) for name, kp in _cases(*DANCES[dance]).items()
    }


@pytest.mark.parametrize("dance", range(len(DANCES)))
def test_every_more_severe_mistake_scores_lower(dance: int) -> None:
    scores = {name: r.score for name, r in _table(dance).items()}
    print(f"dance {DANCES[dance]}: " + ", ".join(f"{n} {s:.1f}" for n, s in scores.items()))
    for milder, severer in SEVERITY:
        assert scores[milder] > scores[severer], (milder, severer, scores)


@pytest.mark.parametrize("dance", range(len(DANCES)))
def test_a_mistake_costs_in_proportion_and_another_dance_stays_low(dance: int) -> None:
    table = _table(dance)
    score = {name: r.score for name, r in table.items()}
    assert score["identical"] == pytest.approx(100.0)
    assert min(score["jitter"], score["tempo drift"]) >= 95
    # Right 75 % of the time: one arm held wrong for 2 of 8 s.
    assert 70 <= score["one limb 2 s"] <= 85
    assert score["one limb 2 s"] >= score["different dance"] + 20
    assert score["different dance"] <= 50 and score["noise"] <= 5
    # The wrong arm is the part that lost points; the rest of the body kept its score.
    parts = table["one limb 2 s"].parts
    assert min(parts, key=lambda p: parts[p] or 100.0) == "left_arm"
    assert all((parts[p] or 100.0) >= 95 for p in ("head", "left_leg", "right_leg"))


@pytest.mark.parametrize("dance", range(len(DANCES)))
def test_another_dance_is_told_so_and_the_same_dance_is_not(dance: int) -> None:
    table = _table(dance)
    for name in SAME_DANCE:
        match = table[name].match
        assert match.same_choreography, (name, match)
        assert table[name].timing.reason is None and table[name].timing.offset_ms is not None
    for name in ("different dance", "noise"):
        result = table[name]
        assert not result.match.same_choreography and result.match.confidence >= 0.9, name
        assert result.timing.offset_ms is None and result.timing.tempo_ratio is None
        assert result.timing.reason == "another_dance"
        (line,) = result.feedback  # no timing or per-part advice for the wrong dance
        assert line.en.startswith('This doesn\'t look like "Calibration" yet')
        assert "first 8 counts" in line.en and "'Calibration'" in line.ko and "8카운트" in line.ko
    assert table["different dance"].worst_moments  # where it differs most is still shown


@pytest.mark.parametrize("dance", range(len(DANCES)))
def test_every_move_has_a_rating(dance: int) -> None:
    _, bpm, *_ = DANCES[dance]
    table = _table(dance)
    beats = int(np.floor(SECONDS * 30 - 1) / 30 / (60 / bpm)) + 1
    for name, result in table.items():
        assert len(result.timeline) == beats
        assert all(p.rating in RATING_NAMES for p in result.timeline), name
        assert sum(result.moves.values()) == beats and tuple(result.moves) == RATING_NAMES
    assert table["identical"].moves["perfect"] == beats
    wrong = table["one limb 2 s"]
    missed = [p for p in wrong.timeline if p.rating in ("ok", "miss")]
    assert missed and all(2.5 <= p.start_s < 5.5 for p in missed)  # the 2 s held wrong
    assert all(p.rating == "perfect" for p in wrong.timeline if p.end_s <= 2.5 or p.start_s >= 5.5)
    line = next(f for f in wrong.feedback if "moves perfect" in f.en)
    assert f"{wrong.moves['perfect']} of {beats} moves perfect" in line.en and "퍼펙트" in line.ko
    assert table["noise"].moves["miss"] == beats


def test_scores_per_moment_are_not_sunk_by_one_bad_stretch() -> None:
    """The issue's report: one arm held down for 2 of 8 s scored like another dance."""
    results = [_table(d) for d in range(len(DANCES))]
    gaps = [r["one limb 2 s"].score - r["different dance"].score for r in results]
    assert min(gaps) >= 20
    for a, b in itertools.pairwise(
        ["one limb 0.5 s", "one limb 1 s", "one limb 2 s", "one limb 4 s"]
    ):
        # Twice as long wrong costs about twice as much.
        for r in results:
            ratio = (100 - r[b].score) / (100 - r[a].score)
            assert 1.6 <= ratio <= 2.6, (a, b, ratio)

"""Synthetic choreographies: key poses on the beat, eased from one to the next, like a dance
teacher's 8 counts. A different generator from ``dancers.py`` (whose joints follow free
sines): here tempo (bpm), arm and leg amplitude are parameters, and a mistake is a limb
held in the wrong place for a stretch of time, every joint off by a fixed angle, or the
tempo drifting, so a test knows exactly how much of the dance was wrong and for how long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from megacity.scoring.pose import PoseSequence
from tests.scoring.dancers import body

FPS = 30.0

# Key poses in radians from "straight down", positive = away from the body's midline.
# Arms: (upper arm, elbow bend, hand); legs: (thigh, knee bend). None of the arm poses is
# "down" and none of the leg poses is "crossed": those are the held mistakes below.
_ARM_POSES = ((1.57, 0.1, 0.0), (2.7, 0.2, 0.2), (0.9, 1.7, 0.3), (2.2, 0.9, 0.6),
              (1.2, 2.3, -0.3), (3.0, 0.0, 0.0), (0.6, 1.2, 0.4))  # fmt: skip
_LEG_POSES = ((0.1, 0.05), (0.45, 0.1), (0.3, 0.9), (0.8, 0.3), (0.2, 0.5))
_REST_ARM, _REST_LEG = (0.2, 0.2, 0.0), (0.08, 0.1)
_WRONG = {"arm": (0.08, 0.0, 0.0), "leg": (-0.3, 0.0)}  # held down / crossed in
LIMBS = ("left_arm", "right_arm", "left_leg", "right_leg")
_SWITCH_S = 0.2


@dataclass(frozen=True)
class Choreography:
    """Key poses, one per beat: joint name → radians (beats,), at ``bpm`` beats per minute."""

    bpm: float
    keys: Mapping[str, np.ndarray]


def choreography(
    seed: int, *, bpm: float = 110.0, arm_amp: float = 1.0, leg_amp: float = 1.0, beats: int = 48
) -> Choreography:
    """A dance of ``beats`` counts; amplitudes scale each limb's reach away from rest."""
    rng = np.random.default_rng(seed)
    keys: dict[str, list[float]] = {k: [] for k in ("lean", "head")}
    for side in ("l", "r"):
        for joint in ("upper", "elbow", "hand", "thigh", "knee"):
            keys[f"{side}_{joint}"] = []
    for _ in range(beats):
        for side in ("l", "r"):
            arm = _ARM_POSES[rng.integers(len(_ARM_POSES))]
            leg = _LEG_POSES[rng.integers(len(_LEG_POSES))]
            for joint, value, rest in zip(("upper", "elbow", "hand"), arm, _REST_ARM, strict=True):
                keys[f"{side}_{joint}"].append(rest + arm_amp * (value - rest))
            for joint, value, rest in zip(("thigh", "knee"), leg, _REST_LEG, strict=True):
                keys[f"{side}_{joint}"].append(rest + leg_amp * (value - rest))
        keys["lean"].append(float(rng.uniform(-0.2, 0.2)))
        keys["head"].append(float(rng.uniform(-0.25, 0.25)))
    return Choreography(bpm, {k: np.array(v) for k, v in keys.items()})


def _eased(keys: np.ndarray, beat: np.ndarray) -> np.ndarray:
    k = np.clip(np.floor(beat).astype(np.int64), 0, len(keys) - 2)
    u = np.clip(beat - k, 0.0, 1.0)
    ease = (1 - np.cos(np.pi * u)) / 2  # hold on the beat, move between beats
    return np.asarray(keys[k] + ease * (keys[k + 1] - keys[k]))


def perform(
    dance: Choreography,
    seconds: float = 8.0,
    *,
    fps: float = FPS,
    wrong: Mapping[str, tuple[float, float]] | None = None,
    joint_offset_deg: float = 0.0,
    tempo: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Keypoints ``(frames, 33, 4)`` of someone dancing ``dance`` for ``seconds``.

    ``wrong``: limb → (start, end) seconds during which it is held in a wrong place;
    ``joint_offset_deg``: added to every joint angle the whole time; ``tempo``: the
    dancer's speed relative to the music at the start and at the end (linear drift).
    """
    t = np.arange(round(seconds * fps)) / fps
    rate = tempo[0] + (tempo[1] - tempo[0]) * t / max(seconds, 1e-9)
    danced = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2 / fps)])
    beat = danced * dance.bpm / 60.0
    offset = np.radians(joint_offset_deg)
    a = {name: _eased(keys, beat) + offset for name, keys in dance.keys.items()}
    for joint in ("l_elbow", "r_elbow", "l_knee", "r_knee"):
        a[joint] = np.abs(a[joint])
    for limb, (start, end) in (wrong or {}).items():
        side, kind = limb[0], limb.split("_")[1]
        # Into the wrong place and back within _SWITCH_S, as a person moves (no teleport).
        held = np.clip(np.minimum(t - start, end - t) / _SWITCH_S + 0.5, 0.0, 1.0)
        joints = ("upper", "elbow", "hand") if kind == "arm" else ("thigh", "knee")
        for joint, value in zip(joints, _WRONG[kind], strict=True):
            a[f"{side}_{joint}"] = held * value + (1 - held) * a[f"{side}_{joint}"]
    return body(a, t)


def jittered(kp: np.ndarray, sigma: float = 0.004, seed: int = 0) -> np.ndarray:
    """Pose-estimation jitter: Gaussian noise on x and y (0.004 ≈ 2 % of the torso)."""
    out = kp.copy()
    out[:, :, :2] += np.random.default_rng(seed).normal(0, sigma, out[:, :, :2].shape)
    return out


def noise(frames: int, seed: int = 0) -> np.ndarray:
    """Random keypoints: no dance at all."""
    kp = np.random.default_rng(seed).random((frames, 33, 4))
    kp[:, :, 3] = 0.9
    return kp


def seq(kp: np.ndarray, fps: float = FPS) -> PoseSequence:
    return PoseSequence(kp, fps=fps)

"""Synthetic dancers: MediaPipe-like keypoints of a dancer whose joint angles follow known
sines, so a test knows exactly how two dances differ (time, space, one arm, mirror)."""

from __future__ import annotations

import numpy as np

from megacity.scoring.pose import MIRROR_INDEX, PoseSequence

FPS = 30.0
SECONDS = 12.0

# Joint angles in radians from "straight down", positive = away from the body's midline;
# each is base + three sines (0.25–1.5 Hz), like a dancer mixing moves of several tempos.
_BASE = {"l_upper": 1.2, "r_upper": 1.2, "l_elbow": 0.6, "r_elbow": 0.6, "l_hand": 0.0,
         "r_hand": 0.0, "l_thigh": 0.1, "r_thigh": 0.1, "l_knee": 0.3, "r_knee": 0.3,
         "lean": 0.0, "head": 0.0}  # fmt: skip
_AMP = {"l_upper": 1.1, "r_upper": 1.1, "l_elbow": 0.7, "r_elbow": 0.7, "l_hand": 0.5,
        "r_hand": 0.5, "l_thigh": 0.35, "r_thigh": 0.35, "l_knee": 0.4, "r_knee": 0.4,
        "lean": 0.15, "head": 0.2}  # fmt: skip
_FACE = {1: (0.04, 0.06), 2: (0.07, 0.06), 3: (0.1, 0.06), 4: (-0.04, 0.06), 5: (-0.07, 0.06),
         6: (-0.1, 0.06), 7: (0.15, 0.02), 8: (-0.15, 0.02), 9: (0.04, -0.07),
         10: (-0.04, -0.07)}  # fmt: skip


def _angles(seed: int, t: np.ndarray, amplitude: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, base in _BASE.items():
        freqs, phases = rng.uniform(0.25, 1.5, 3), rng.uniform(0, 2 * np.pi, 3)
        amps = rng.dirichlet(np.ones(3)) * _AMP[name] * amplitude
        waves = amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])
        out[name] = base * rng.uniform(0.5, 1.5) + waves.sum(axis=0)
    for joint in ("l_elbow", "r_elbow", "l_knee", "r_knee"):
        out[joint] = np.abs(out[joint])  # elbows and knees bend one way only
    return out


def _dir(angle: np.ndarray, side: float) -> np.ndarray:
    # side +1 = the dancer's left, which is image +x for a dancer facing the camera.
    return np.stack([side * np.sin(angle), np.cos(angle)], axis=-1)


def dancer(
    seed: int = 1,
    t: np.ndarray | None = None,
    *,
    amplitude: float = 1.0,
    left_arm_down: tuple[float, float] | None = None,
) -> np.ndarray:
    """MediaPipe-like keypoints ``(frames, 33, 4)`` of a synthetic dancer at times ``t`` (s)."""
    t = np.arange(int(SECONDS * FPS)) / FPS if t is None else t
    a = _angles(seed, t, amplitude)
    if left_arm_down is not None:
        wrong = (t >= left_arm_down[0]) & (t < left_arm_down[1])
        a["l_upper"] = np.where(wrong, 0.15, a["l_upper"])
        a["l_elbow"] = np.where(wrong, 0.05, a["l_elbow"])
    return body(a, t)


def body(a: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
    """Keypoints ``(frames, 33, 4)`` of a body whose joint angles (radians, see ``_BASE``) are ``a``."""
    bounce = np.stack([0.04 * np.sin(np.pi * t), 0.015 * np.sin(4 * np.pi * t)], axis=-1)
    up = -_dir(a["lean"], 1.0)
    side = np.stack([-up[:, 1], up[:, 0]], axis=-1)
    p: dict[int, np.ndarray] = {23: bounce + 0.3 * side, 24: bounce - 0.3 * side}
    p[11], p[12] = bounce + up + 0.45 * side, bounce + up - 0.45 * side
    for s, sign, first in (("l", 1.0, 0), ("r", -1.0, 1)):
        sh, el, wr, hp, kn, an = (i + first for i in (11, 13, 15, 23, 25, 27))
        p[el] = p[sh] + 0.6 * _dir(a[f"{s}_upper"], sign)
        fore = a[f"{s}_upper"] + a[f"{s}_elbow"]
        p[wr] = p[el] + 0.55 * _dir(fore, sign)
        hand = fore + a[f"{s}_hand"]
        p[wr + 2] = p[wr] + 0.17 * _dir(hand - 0.3, sign)  # pinky
        p[wr + 4] = p[wr] + 0.2 * _dir(hand, sign)  # index
        p[wr + 6] = p[wr] + 0.12 * _dir(hand + 0.4, sign)  # thumb
        p[kn] = p[hp] + 0.9 * _dir(a[f"{s}_thigh"], sign)
        shin = a[f"{s}_thigh"] - a[f"{s}_knee"]
        p[an] = p[kn] + 0.85 * _dir(shin, sign)
        p[an + 2] = p[an] + 0.1 * _dir(shin + 2.6, sign)  # heel
        p[an + 4] = p[an] + 0.25 * _dir(shin + 1.5, sign)  # foot index
    head_up = -_dir(a["lean"] + a["head"], 1.0)
    head_side = np.stack([-head_up[:, 1], head_up[:, 0]], axis=-1)
    p[0] = bounce + up + 0.55 * head_up
    for k, (dx, dy) in _FACE.items():
        p[k] = p[0] + dx * head_side + dy * head_up
    kp = np.zeros((len(t), 33, 4))
    kp[:, :, 3] = 0.95
    for k, xy in p.items():
        kp[:, k, :2] = xy * 0.22 + np.array([0.5, 0.55])  # torso = 22 % of the frame height
    return kp


def mirrored(kp: np.ndarray) -> np.ndarray:
    out = kp[:, list(MIRROR_INDEX)].copy()
    out[:, :, 0] = 1.0 - out[:, :, 0]
    return out


def seq(kp: np.ndarray, fps: float = FPS) -> PoseSequence:
    return PoseSequence(kp, fps=fps)


def times(seconds: float = SECONDS, fps: float = FPS) -> np.ndarray:
    return np.arange(round(seconds * fps)) / fps

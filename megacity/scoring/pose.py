"""Pose layout: MediaPipe BlazePose's 33 landmarks, body parts, COCO-17 mapping, PoseSequence.

Keypoints are arrays ``(frames, 33, 4)`` holding x, y, z, visibility in MediaPipe's
image-normalised coordinates (x right, y down, both 0..1 across the frame). A frame with
no person is a row of NaN. MoveNet / COCO-17 arrays ``(frames, 17, 3 or 4)`` are mapped
onto the 33 layout; the landmarks COCO lacks (hands, feet, mouth) get visibility 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from megacity.scoring.limits import MAX_FPS, MAX_FRAMES

NOSE = 0
LEFT_EYE_INNER, LEFT_EYE, LEFT_EYE_OUTER = 1, 2, 3
RIGHT_EYE_INNER, RIGHT_EYE, RIGHT_EYE_OUTER = 4, 5, 6
LEFT_EAR, RIGHT_EAR = 7, 8
MOUTH_LEFT, MOUTH_RIGHT = 9, 10
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
LEFT_ELBOW, RIGHT_ELBOW = 13, 14
LEFT_WRIST, RIGHT_WRIST = 15, 16
LEFT_PINKY, RIGHT_PINKY = 17, 18
LEFT_INDEX, RIGHT_INDEX = 19, 20
LEFT_THUMB, RIGHT_THUMB = 21, 22
LEFT_HIP, RIGHT_HIP = 23, 24
LEFT_KNEE, RIGHT_KNEE = 25, 26
LEFT_ANKLE, RIGHT_ANKLE = 27, 28
LEFT_HEEL, RIGHT_HEEL = 29, 30
LEFT_FOOT_INDEX, RIGHT_FOOT_INDEX = 31, 32
NUM_LANDMARKS = 33

# Left/right swap used for mirroring: index i of a mirrored frame comes from MIRROR_INDEX[i].
MIRROR_INDEX: tuple[int, ...] = (
    *(0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9),
    *(i + 1 if i % 2 == 1 else i - 1 for i in range(11, 33)),
)

BODY_PARTS: tuple[str, ...] = ("head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")
PART_LANDMARKS: dict[str, tuple[int, ...]] = {
    "head": tuple(range(0, 11)),
    "torso": (LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP),
    "left_arm": (LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST, LEFT_PINKY, LEFT_INDEX, LEFT_THUMB),
    "right_arm": (RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST, RIGHT_PINKY, RIGHT_INDEX, RIGHT_THUMB),
    "left_leg": (LEFT_HIP, LEFT_KNEE, LEFT_ANKLE, LEFT_HEEL, LEFT_FOOT_INDEX),
    "right_leg": (RIGHT_HIP, RIGHT_KNEE, RIGHT_ANKLE, RIGHT_HEEL, RIGHT_FOOT_INDEX),
}

# Words for each part: English noun, Korean noun + object particle, + subject particle.
PART_NAMES: dict[str, tuple[str, str, str]] = {
    "head": ("head", "머리를", "머리가"),
    "torso": ("upper body", "상체를", "상체가"),
    "left_arm": ("left arm", "왼팔을", "왼팔이"),
    "right_arm": ("right arm", "오른팔을", "오른팔이"),
    "left_leg": ("left leg", "왼다리를", "왼다리가"),
    "right_leg": ("right leg", "오른다리를", "오른다리가"),
}

# COCO-17 order (MoveNet, YOLO-pose, OpenPifPaf): nose, eyes, ears, shoulders, elbows,
# wrists, hips, knees, ankles; COCO_TO_BLAZEPOSE[k] is the BlazePose index of COCO point k.
COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO_TO_BLAZEPOSE: tuple[int, ...] = (
    NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR, LEFT_SHOULDER, RIGHT_SHOULDER,
    LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST, LEFT_HIP, RIGHT_HIP,
    LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE,
)  # fmt: skip

MAX_COORD = 1e6  # image-normalised values are ~0..1; pixels up to 8K also pass


def coco17_to_blazepose(keypoints: np.ndarray, *, yx: bool = False) -> np.ndarray:
    """Map ``(frames, 17, 3|4)`` COCO keypoints to ``(frames, 33, 4)``; ``yx`` for MoveNet's raw (y, x, score)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1] != 17 or kp.shape[2] not in (3, 4):
        raise ValueError(f"COCO-17 keypoints must have shape (frames, 17, 3|4), got {kp.shape}")
    out = np.full((kp.shape[0], NUM_LANDMARKS, 4), np.nan)
    out[:, :, 3] = 0.0
    xy = kp[:, :, [1, 0]] if yx else kp[:, :, :2]
    idx = list(COCO_TO_BLAZEPOSE)
    out[:, idx, 0:2] = xy
    out[:, idx, 2] = kp[:, :, 2] if kp.shape[2] == 4 else 0.0
    out[:, idx, 3] = kp[:, :, -1]
    # A no-person row stays NaN so that it is recognised as a missing frame.
    out[:, idx, 2] = np.where(np.isnan(xy[:, :, 0]), np.nan, out[:, idx, 2])
    return out


def to_blazepose(keypoints: np.ndarray) -> np.ndarray:
    """Return keypoints as float ``(frames, 33, 4)``: accepts 33×4, 33×3 (x, y, vis), 17×3, 17×4."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3:
        raise ValueError(
            f"keypoints must be a 3-D array (frames, landmarks, values), got {kp.shape}"
        )
    if kp.shape[1] == 17:
        return coco17_to_blazepose(kp)
    if kp.shape[1] != NUM_LANDMARKS or kp.shape[2] not in (3, 4):
        raise ValueError(
            f"keypoints must have shape (frames, 33, 4) or (frames, 17, 3|4), got {kp.shape}"
        )
    if kp.shape[2] == 4:
        return kp.copy()
    out = np.zeros((kp.shape[0], NUM_LANDMARKS, 4))
    out[:, :, [0, 1, 3]] = kp
    return out


def _check_values(kp: np.ndarray) -> None:
    if np.isinf(kp).any():
        raise ValueError("keypoints contain infinite values; use NaN for missing landmarks")
    coords = kp[:, :, :3]
    if (np.abs(coords[~np.isnan(coords)]) > MAX_COORD).any():
        raise ValueError(f"keypoint coordinates must be within ±{MAX_COORD:g}")
    vis = kp[:, :, 3]
    vis = vis[~np.isnan(vis)]
    if ((vis < -1e-6) | (vis > 1 + 1e-6)).any():
        raise ValueError("visibility must be within 0..1")


def _check_times(frames: int, fps: float | None, timestamps: np.ndarray | None) -> np.ndarray:
    if timestamps is None:
        if fps is None or not np.isfinite(fps) or not 0 < fps <= MAX_FPS:
            raise ValueError(f"give timestamps or fps within (0, {MAX_FPS:g}], got fps={fps}")
        return np.arange(frames, dtype=np.float64) / float(fps)
    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.shape != (frames,):
        raise ValueError(f"timestamps must have shape ({frames},), got {ts.shape}")
    if not np.isfinite(ts).all():
        raise ValueError("timestamps must be finite")
    if frames > 1 and (np.diff(ts) <= 0).any():
        raise ValueError("timestamps must be strictly increasing")
    if frames > 1 and (ts[-1] - ts[0]) * MAX_FPS < frames - 1:
        raise ValueError(f"timestamps imply more than {MAX_FPS:g} frames per second")
    return ts


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class PoseSequence:
    """Pose keypoints of one video: ``(frames, 33, 4)`` (or COCO-17) plus fps or timestamps (s).

    Timestamps win when both are given (so ``dataclasses.replace`` keeps working).
    ``aspect_ratio`` is the video's width / height, so that image-normalised x and y are
    put on one scale (a portrait phone clip and a landscape reference compare correctly).
    After construction ``keypoints`` is always a read-only float ``(frames, 33, 4)`` array
    and ``timestamps`` a read-only array of seconds.
    """

    keypoints: np.ndarray
    fps: float | None = None
    timestamps: np.ndarray | None = None
    aspect_ratio: float = 1.0

    def __post_init__(self) -> None:
        kp = to_blazepose(self.keypoints)
        if not 1 <= kp.shape[0] <= MAX_FRAMES:
            raise ValueError(f"a pose sequence needs 1..{MAX_FRAMES} frames, got {kp.shape[0]}")
        _check_values(kp)
        if not np.isfinite(self.aspect_ratio) or not 0.1 <= self.aspect_ratio <= 10:
            raise ValueError(f"aspect_ratio must be within 0.1..10, got {self.aspect_ratio}")
        ts = _check_times(kp.shape[0], self.fps, self.timestamps)
        kp.setflags(write=False)
        ts = ts.copy()
        ts.setflags(write=False)
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "timestamps", ts)

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds, shape ``(frames,)``."""
        assert self.timestamps is not None  # set in __post_init__
        return self.timestamps

    @property
    def frames(self) -> int:
        """Number of frames."""
        return int(self.keypoints.shape[0])

"""Pose keypoints of one video (``PoseExtraction``) and their ``.npz`` form.

``(frames, 33, 4)`` float32 x, y, z, visibility in MediaPipe's image-normalised
coordinates of the displayed (rotated) picture, a row of NaN where no person was found.
The ``.npz`` form is the wire format of remote pose nodes and the storage format of
reference dances; reading one checks every member's header before any data is read.
"""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from megacity.scoring.pose import MAX_COORD, MAX_FPS, MAX_FRAMES, NUM_LANDMARKS, PoseSequence

NPZ_VERSION = 1
_MAX_SIDE = 16_384  # px
_MAX_DURATION_S = 24 * 3600.0
_NPZ_FIELDS = {  # name: (dtype, shape; -1 is the frame count)
    "version": ("<i4", ()),
    "keypoints": ("<f4", (-1, NUM_LANDMARKS, 4)),
    "timestamps": ("<f8", (-1,)),
    "width": ("<i4", ()),
    "height": ("<i4", ()),
    "fps": ("<f8", ()),
    "duration_s": ("<f8", ()),
}
_MAX_NPY_BYTES = MAX_FRAMES * NUM_LANDMARKS * 4 * 4 + 1024


@dataclass(frozen=True, eq=False)  # holds arrays
class PoseExtraction:
    """Keypoints ``(frames, 33, 4)`` float32 and their times (s) from one video, with the
    video's display size (px), the sampling rate (fps) and the video's duration (s)."""

    keypoints: np.ndarray
    timestamps: np.ndarray
    width: int
    height: int
    fps: float
    duration_s: float

    def __post_init__(self) -> None:
        kp = np.array(self.keypoints)  # a copy: the caller's array stays writable
        ts = np.array(self.timestamps)
        if kp.dtype != np.float32 or kp.ndim != 3 or kp.shape[1:] != (NUM_LANDMARKS, 4):
            raise ValueError(
                f"keypoints must be float32 (frames, 33, 4), got {kp.dtype} {kp.shape}"
            )
        if not 1 <= kp.shape[0] <= MAX_FRAMES:
            raise ValueError(f"an extraction holds 1..{MAX_FRAMES} frames, got {kp.shape[0]}")
        if np.isinf(kp).any() or (np.abs(np.nan_to_num(kp[:, :, :3])) > MAX_COORD).any():
            raise ValueError(f"keypoint coordinates must be finite and within ±{MAX_COORD:g}")
        vis = kp[:, :, 3][~np.isnan(kp[:, :, 3])]
        if ((vis < 0) | (vis > 1)).any():
            raise ValueError("visibility must be within 0..1")
        if ts.dtype != np.float64 or ts.shape != (kp.shape[0],) or not np.isfinite(ts).all():
            raise ValueError(f"timestamps must be {kp.shape[0]} finite float64 seconds")
        if (np.diff(ts) <= 0).any():
            raise ValueError("timestamps must be strictly increasing")
        for name in ("width", "height"):
            if not 1 <= int(getattr(self, name)) <= _MAX_SIDE:
                raise ValueError(f"{name} must be within 1..{_MAX_SIDE} px")
        if not (math.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            raise ValueError(f"fps must be within (0, {MAX_FPS:g}]")
        if not (math.isfinite(self.duration_s) and 0 <= self.duration_s <= _MAX_DURATION_S):
            raise ValueError("duration_s must be within 0..86400")
        kp.setflags(write=False)
        ts.setflags(write=False)
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "timestamps", ts)

    @property
    def frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def persons(self) -> int:
        """Frames in which a person was found."""
        return int((~np.isnan(self.keypoints[:, :, 0]).all(axis=1)).sum())

    @property
    def coverage(self) -> float:
        """The fraction of frames (0..1) in which a person was found."""
        return self.persons / self.frames

    def sequence(self) -> PoseSequence:
        """The keypoints as a scoring `PoseSequence` (aspect ratio = width / height)."""
        return PoseSequence(
            self.keypoints, timestamps=self.timestamps, aspect_ratio=self.width / self.height
        )

    def to_npz(self) -> bytes:
        """The extraction as a compressed numpy ``.npz`` (no pickles)."""
        out = io.BytesIO()
        np.savez_compressed(
            out,
            version=np.int32(NPZ_VERSION),
            keypoints=self.keypoints,
            timestamps=self.timestamps,
            width=np.int32(self.width),
            height=np.int32(self.height),
            fps=np.float64(self.fps),
            duration_s=np.float64(self.duration_s),
        )
        return out.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> PoseExtraction:
        """Read ``to_npz`` bytes from a node or storage; ValueError for anything else."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = sorted(info.filename for info in archive.infolist())
                if names != sorted(f"{name}.npy" for name in _NPZ_FIELDS):
                    raise ValueError(f"unexpected members {names[:10]}")
                arrays = {name: _read_npy(archive, name) for name in _NPZ_FIELDS}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as exc:
            raise ValueError(f"not a pose extraction .npz: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"not a pose extraction .npz: {exc}") from None
        if int(arrays["version"]) != NPZ_VERSION:
            raise ValueError(f"unsupported pose extraction version {int(arrays['version'])}")
        return cls(
            keypoints=arrays["keypoints"],
            timestamps=arrays["timestamps"],
            width=int(arrays["width"]),
            height=int(arrays["height"]),
            fps=float(arrays["fps"]),
            duration_s=float(arrays["duration_s"]),
        )


def _read_npy(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """One member, its header checked before any data is read (a header can claim any shape)."""
    dtype, pattern = _NPZ_FIELDS[name]
    info = archive.getinfo(f"{name}.npy")
    if info.file_size > _MAX_NPY_BYTES:
        raise ValueError(f"{name} is too large")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        reader = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, found = reader(member)
        if found.str != dtype or fortran or len(shape) != len(pattern):
            raise ValueError(f"{name} must be a {dtype} array of {len(pattern)} dimensions")
        if any(want not in (-1, got) for want, got in zip(pattern, shape, strict=True)):
            raise ValueError(f"{name} has shape {shape}")
        size = math.prod(shape) * found.itemsize
        if size > _MAX_NPY_BYTES:
            raise ValueError(f"{name} is too large")
        raw = member.read(size)
    if len(raw) != size:
        raise ValueError(f"{name} is truncated")
    return np.frombuffer(raw, dtype=found).reshape(shape).copy()


__all__ = ["NPZ_VERSION", "PoseExtraction"]

"""Videos for the motion tests, made with PyAV from a real photo of a person.

`skimage.data.astronaut()` (512×512, an astronaut from the waist up) is pasted on a plain
canvas, moved and scaled over time along a known path, so a test can say where her nose
and shoulders must be in every frame. Other makers give the refusals: no person, no
frames, not a video, too long, audio only. Every maker is cached: one encoding per run.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
POSE_MODEL = str((SHARED / "models" / "pose_landmarker_full.task").resolve())
CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"
BACKGROUND = (96, 110, 124)


def encode(
    frames: Iterable[np.ndarray],
    *,
    fps: float = 30,
    times: Iterable[float] | None = None,
    fmt: str = "mp4",
    codec: str = CODEC,
    rotation: int = 0,
    options: dict[str, str] | None = None,
) -> bytes:
    """RGB frames → a video file; `times` (s) gives each frame its own pts (VFR)."""
    out = io.BytesIO()
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    with av.open(out, "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "20"}
        if times is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        clock = iter(times) if times is not None else None
        for i, rgb in enumerate(_chain(first, frames)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if clock is not None:
                frame.pts, frame.time_base = round(next(clock) * 1000), Fraction(1, 1000)
            else:
                frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield first
    yield from rest


@functools.cache
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut())


@dataclass(frozen=True)
class Path2D:
    """Where the photo is at time t (s): its top-left corner and side, in canvas pixels."""

    size: tuple[int, int]  # canvas width, height
    start: tuple[float, float, float]  # x0, y0, side at t = 0
    end: tuple[float, float, float]  # ... at t = duration
    duration: float

    def at(self, t: float) -> tuple[float, float, float]:
        a = min(max(t / self.duration, 0.0), 1.0)
        x0, y0, s = (p + (q - p) * a for p, q in zip(self.start, self.end, strict=True))
        return x0, y0, s

    def to_canvas(self, t: float, photo_xy: np.ndarray) -> np.ndarray:
        """Photo-normalised (x, y) (0..1 across the photo) → canvas-normalised (x, y)."""
        x0, y0, side = self.at(t)
        width, height = self.size
        xy = np.asarray(photo_xy, dtype=np.float64)
        return np.stack([(x0 + side * xy[..., 0]) / width, (y0 + side * xy[..., 1]) / height], -1)


def render(path: Path2D, t: float) -> np.ndarray:
    """The canvas at time t: the photo at `path.at(t)` (sub-pixel placement by warp)."""
    x0, y0, side = path.at(t)
    scale = side / 512
    matrix = np.array([[scale, 0, x0], [0, scale, y0]], dtype=np.float64)
    return cv2.warpAffine(
        astronaut(),
        matrix,
        path.size,
        flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BACKGROUND,
    )


MOVING = Path2D(size=(640, 480), start=(40, 90, 300), end=(260, 40, 380), duration=4.0)


@functools.cache
def moving_person(
    seconds: float = 4.0, fps: float = 30, offset_s: float = 0.0, rotation: int = 0
) -> bytes:
    """The astronaut along `MOVING`, from `offset_s` on (the clip's t=0 is path time offset_s)."""
    n = round(seconds * fps)
    frames = (render(MOVING, offset_s + i / fps) for i in range(n))
    if rotation:  # store the picture turned back, so that a player turning it shows MOVING
        frames = (np.rot90(f, -rotation // 90) for f in frames)
    return encode(frames, fps=fps, rotation=rotation)


@functools.cache
def still_person(seconds: float = 1.0, fps: float = 15) -> bytes:
    """The photo alone, full frame (512×512), still: the reference landmarks."""
    return encode((astronaut() for _ in range(round(seconds * fps))), fps=fps)


@functools.cache
def vfr_person() -> tuple[bytes, tuple[float, ...]]:
    """A variable-frame-rate clip (a phone's): 1 s at 30 fps, 1 s at 10, 1 s at 24; its times."""
    times = [i / 30 for i in range(30)] + [1 + i / 10 for i in range(10)]
    times += [2 + i / 24 for i in range(24)]
    frames = (render(MOVING, t) for t in times)
    return encode(frames, times=times), tuple(round(t, 3) for t in times)


@functools.cache
def no_person(seconds: float = 2.0, fps: float = 15, noise: bool = False) -> bytes:
    """A clip without a person: plain colour, or random noise."""
    rng = np.random.default_rng(7)

    def frame() -> np.ndarray:
        if noise:
            return rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        return np.full((240, 320, 3), BACKGROUND, dtype=np.uint8)

    return encode((frame() for _ in range(round(seconds * fps))), fps=fps)


def numbered(seconds: float, fps: float, size: tuple[int, int] = (64, 48)) -> bytes:
    """Tiny frames whose brightness encodes their index (10 * i % 250): for timing tests."""
    width, height = size
    count = round(seconds * fps)
    return encode(
        (np.full((height, width, 3), (10 * i) % 250, np.uint8) for i in range(count)), fps=fps
    )


@functools.cache
def too_long(seconds: float = 12.0) -> bytes:
    return numbered(seconds, 5)


@functools.cache
def streamed_webm(seconds: float = 3.0) -> bytes:
    """A webm whose header has no duration (as browsers' MediaRecorder writes them)."""
    return encode(
        (np.full((48, 64, 3), 80, np.uint8) for _ in range(round(seconds * 10))),
        fps=10,
        fmt="webm",
        codec="libvpx-vp9",
        options={"live": "1"},
    )


@functools.cache
def zero_frames() -> bytes:
    """An AVI whose video stream holds no frame (mp4 and mkv drop or refuse such a stream)."""
    out = io.BytesIO()
    with av.open(out, "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return out.getvalue()


@functools.cache
def corrupt() -> bytes:
    """A valid container whose frame data is garbage: an AVI of MPEG-4 with scrambled packets."""
    good = encode(
        (np.full((48, 64, 3), 10 * i, np.uint8) for i in range(10)), fmt="avi", codec="mpeg4"
    )
    rng = np.random.default_rng(3)
    out = io.BytesIO()
    with av.open(io.BytesIO(good)) as source, av.open(out, "w", format="avi") as target:
        src = source.streams.video[0]
        dst = target.add_stream_from_template(src)
        for packet in source.demux(src):
            if packet.size:
                packet = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                packet.stream, packet.pts, packet.dts = dst, None, None
                target.mux(packet)
    return out.getvalue()


@functools.cache
def audio_only(seconds: float = 1.0) -> bytes:
    """An m4a (AAC) with no picture."""
    out = io.BytesIO()
    rate = 44_100
    with av.open(out, "w", format="ipod") as container:
        stream = container.add_stream("aac", rate=rate)
        tone = (0.2 * np.sin(2 * math.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(
            np.float32
        )
        for start in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(
                tone[None, start : start + 1024], format="flt", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


def png_image() -> bytes:
    ok, buf = cv2.imencode(".png", astronaut()[:, :, ::-1])
    assert ok
    return buf.tobytes()


TEXT = b"name,score\nastronaut,100\n"
RANDOM = np.random.default_rng(11).integers(0, 256, 4096, dtype=np.uint8).tobytes()


def with_audio(frames: list[np.ndarray], fps: float, wav: bytes) -> bytes:
    """A video of `frames` with a WAV file's sound as its AAC track (a phone clip)."""
    out = io.BytesIO()
    with av.open(io.BytesIO(wav)) as source:
        rate = source.streams.audio[0].codec_context.sample_rate
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        sound = [f for frame in source.decode(audio=0) for f in resampler.resample(frame)]
    height, width = frames[0].shape[:2]
    with av.open(out, "w", format="mp4") as container:
        video = container.add_stream(CODEC, rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if CODEC == "libx264":
            video.options = {"preset": "ultrafast", "crf": "23"}
        audio = container.add_stream("aac", rate=rate, layout="mono")
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())
        for frame in sound:
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return out.getvalue()


@functools.cache
def talking_face(wav_name: str = "ko2", fps: float = 10) -> bytes:
    """The astronaut's photo (a smiling face) held still while a shared sentence is spoken."""
    wav = (SHARED / "audio" / f"{wav_name}.wav").read_bytes()
    with av.open(io.BytesIO(wav)) as source:
        seconds = float(source.duration or 0) / av.time_base or 3.0
    photo = cv2.resize(astronaut(), (320, 320), interpolation=cv2.INTER_AREA)
    return with_audio([photo] * max(1, round(seconds * fps)), fps, wav)


def jpeg_with_gps(rgb: np.ndarray | None = None) -> bytes:
    """A JPEG (the astronaut by default) whose EXIF holds a GPS position and an orientation."""
    from PIL import Image

    image = Image.fromarray(astronaut() if rgb is None else rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: shown turned 90° clockwise
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (37.0, 33.0, 59.0)  # Seoul
    gps[3], gps[4] = "E", (126.0, 58.0, 40.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()

"""Video input: probe, sample frames by time and grab one frame, with PyAV.

Uploads are decoded from the bytes received (or from the engine's own private temp file
holding them), never from a file named by the client. Every refusal is a 4xx with its
own code:

=====================  ======  ==========================================================
code                   status  when
=====================  ======  ==========================================================
``file_too_large``     413     over the upload limit (checked by the HTTP layer)
``empty_video``        400     a file of zero bytes
``unsupported_video``  415     not a media file FFmpeg recognises (text, random bytes)
``no_video_stream``    415     a media file without moving pictures: audio only (cover art
                               included), or a still image (png, jpeg, webp)
``corrupt_video``      422     a video stream whose data cannot be decoded
``no_frames``          422     a container with a video stream but not one frame in it
``video_too_long``     422     over the configured duration: the header's duration is
                               checked first, and decoding stops past the limit, so a
                               header that lies cannot make us decode for ever
=====================  ======  ==========================================================

Times are seconds from the video stream's first frame. Frames come out as RGB ``uint8``
``(height, width, 3)`` arrays, turned the way a player shows them (the display matrix of
phone videos, read per frame as ``VideoFrame.rotation``; flips are not applied). Only
one decoded frame is held at a time.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from megacity.engines.media import ffmpeg_reason, too_long
from megacity.errors import BadRequest, UnprocessableEntity, UnsupportedMediaType

log = logging.getLogger("megacity.video")

DEFAULT_FPS = 15.0
# A video source: the upload's bytes, or a Path to the engine's own temp file holding them.
VideoSource = bytes | Path

_SLACK_S = 1.0  # a header or a last frame may overshoot the limit by this much
_SEEK_MARGIN_S = 1.0  # seek this far before a segment so its first frame's neighbour decodes
# Cell boundaries of the sampling grid sit 0.3 of a period away from the grid points, so
# frames of a 30 or 60 fps source (rounded to ms by webm/mkv) never straddle them.
_PHASE = 0.3
_STILL_IMAGE_FORMATS = ("image2", "webp_pipe")  # and every other "*_pipe" image demuxer


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a video holds: display size (px, after rotation), duration (s), average fps,
    an estimate of its frame count, its codec and the rotation (degrees, counter-clockwise)."""

    width: int
    height: int
    duration_s: float
    fps: float
    frames: int
    codec: str
    rotation: int


def probe_video(data: bytes, *, max_seconds: float) -> VideoInfo:
    """Check that `data` is a video of at most `max_seconds` with a decodable first frame."""
    if not data:
        raise BadRequest("the video file is empty", code="empty_video", param="file")
    with _open(data) as container:
        stream = _video_stream(container)
        declared = _declared_duration(container, stream)
        if declared is not None and declared > max_seconds + _SLACK_S:
            raise too_long("video", declared, max_seconds)
        frames = _decoded(container, stream)
        first = next(frames, None)
        frames.close()
        if first is None:
            raise _corrupt("no frame of the video stream can be decoded")
        rotation = _rotation(first)
        width, height = first.width, first.height
        codec = stream.codec_context.name
        rate = _rate(stream)
    duration = declared if declared is not None else _scanned_duration(data, max_seconds)
    if rotation % 180:
        width, height = height, width
    fps = rate or 0.0
    return VideoInfo(
        width=width,
        height=height,
        duration_s=round(duration, 3),
        fps=round(fps, 3),
        frames=max(1, stream.frames or round(duration * fps)),
        codec=codec,
        rotation=rotation,
    )


def video_duration(data: bytes, *, max_seconds: float) -> float:
    """A video's duration (s) from its header, without decoding a frame (packet times when
    the header has none); the 4xx of a file that is not a video or is over `max_seconds`."""
    if not data:
        raise BadRequest("the video file is empty", code="empty_video", param="file")
    with _open(data) as container:
        declared = _declared_duration(container, _video_stream(container))
    if declared is None:
        return _scanned_duration(data, max_seconds)
    if declared > max_seconds + _SLACK_S:
        raise too_long("video", declared, max_seconds)
    return declared


def sample_frames(
    source: VideoSource,
    *,
    fps: float = DEFAULT_FPS,
    start_s: float = 0.0,
    end_s: float = math.inf,
    max_seconds: float | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(t, rgb)`` for frames at about `fps` with ``start_s <= t < end_s``.

    Time is cut into cells of ``1/fps`` s and the first frame (by pts) of each cell is
    kept, so a variable-frame-rate video is sampled by its clock, a source slower than
    `fps` gives every frame, and cutting a clip into segments (each decoded on its own,
    after a seek) yields exactly the frames of one pass over the whole clip.
    """
    if not 0 < fps <= 240:
        raise ValueError(f"fps must be within (0, 240], got {fps}")
    with _open(source) as container:
        stream = _video_stream(container)
        origin = _origin(stream)
        if start_s - _SEEK_MARGIN_S > 0:
            _seek(container, stream, origin + start_s - _SEEK_MARGIN_S)
        last_cell = -math.inf
        last_t = -math.inf
        period = 1.0 / (_rate(stream) or 30.0)
        t = -period
        for frame in _decoded(container, stream):
            t = float(frame.time) - origin if frame.pts is not None else t + period
            if max_seconds is not None and t > max_seconds + _SLACK_S:
                raise too_long("video", t, max_seconds)
            if t >= end_s:
                return
            cell = math.floor(t * fps + _PHASE)
            first_in_cell = cell > last_cell
            last_cell = max(last_cell, cell)
            if first_in_cell and t >= start_s and t > last_t:
                last_t = t
                yield round(t, 6), to_rgb(frame)


def frame_at(data: bytes, t: float) -> np.ndarray:
    """The RGB frame a player shows at `t` seconds (the first or last one outside the clip)."""
    if not data:
        raise BadRequest("the video file is empty", code="empty_video", param="file")
    with _open(data) as container:
        stream = _video_stream(container)
        origin = _origin(stream)
        if t > 0:
            _seek(container, stream, origin + t)
        shown: av.VideoFrame | None = None
        for frame in _decoded(container, stream):
            if shown is not None and frame.pts is not None and float(frame.time) - origin > t:
                break
            shown = frame
        if shown is None:
            raise _corrupt("no frame of the video stream can be decoded")
        return to_rgb(shown)


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as RGB uint8 ``(h, w, 3)``, turned by its display rotation."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = _rotation(frame) // 90
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _open(source: VideoSource) -> av.container.InputContainer:
    try:
        if isinstance(source, Path):
            return av.open(str(source), mode="r", metadata_errors="ignore")
        return av.open(io.BytesIO(source), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UnsupportedMediaType(
            f"the file is not a video in a supported format (mp4/mov, webm, mkv, avi): {ffmpeg_reason(exc)}",
            code="unsupported_video",
            param="file",
        ) from None


def _video_stream(container: av.container.InputContainer) -> av.VideoStream:
    fmt = container.format.name
    streams = [
        s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
    ]
    if not streams:
        raise UnsupportedMediaType(
            f"the file ({fmt}) has no video stream", code="no_video_stream", param="file"
        )
    if fmt in _STILL_IMAGE_FORMATS or (fmt.endswith("_pipe") and fmt != "gif_pipe"):
        raise UnsupportedMediaType(
            f"the file is a still image ({fmt.removesuffix('_pipe')}), not a video",
            code="no_video_stream",
            param="file",
        )
    return streams[0]


def _decoded(
    container: av.container.InputContainer, stream: av.VideoStream
) -> Generator[av.VideoFrame, None, None]:
    """Frames in presentation order; a bad packet is skipped (as ffmpeg does), a stream
    with packets but no decodable frame is ``corrupt_video``, one without packets ``no_frames``."""
    packets = frames = 0
    error: str | None = None
    try:
        for packet in container.demux(stream):
            packets += packet.size > 0
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                error = ffmpeg_reason(exc)
                continue
            for frame in decoded:
                frames += 1
                yield frame
    except av.FFmpegError as exc:  # the container itself is damaged past this point
        if not frames:
            raise _corrupt(f"the video data cannot be read: {ffmpeg_reason(exc)}") from None
        log.info("video demuxing stopped early", extra={"reason": ffmpeg_reason(exc)})
    if frames:
        return
    if not packets:
        raise UnprocessableEntity(
            "the video stream holds no frames", code="no_frames", param="file"
        )
    raise _corrupt(f"the video data cannot be decoded: {error or 'no picture came out'}")


def _seek(container: av.container.InputContainer, stream: av.VideoStream, seconds: float) -> None:
    """Go to the keyframe at or before `seconds`; where the file cannot seek (no index),
    stay at the start: the caller decodes and skips the frames before its time."""
    if stream.time_base is None:
        return
    try:
        container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
    except av.FFmpegError as exc:
        log.info("video seek failed; decoding from the start", extra={"reason": ffmpeg_reason(exc)})


def _declared_duration(
    container: av.container.InputContainer, stream: av.VideoStream
) -> float | None:
    if stream.duration and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _scanned_duration(data: bytes, max_seconds: float) -> float:
    """The duration from packet times (no decoding), for files whose header has none."""
    end = 0.0
    with _open(data) as container:
        stream = _video_stream(container)
        origin = _origin(stream)
        tb = stream.time_base
        try:
            for packet in container.demux(stream):
                if packet.pts is None or tb is None:
                    continue
                end = max(end, float((packet.pts + (packet.duration or 0)) * tb) - origin)
                if end > max_seconds + _SLACK_S:
                    raise too_long("video", end, max_seconds)
        except av.FFmpegError:
            pass  # the probe already decoded a frame; a damaged tail just ends the scan
    return end


def _origin(stream: av.VideoStream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _rate(stream: av.VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


def _rotation(frame: av.VideoFrame) -> int:
    """The frame's display rotation in degrees counter-clockwise, one of 0, 90, 180, 270."""
    degrees = int(frame.rotation or 0)
    return degrees % 360 if degrees % 90 == 0 else 0


def _corrupt(message: str) -> UnprocessableEntity:
    return UnprocessableEntity(message, code="corrupt_video", param="file")


__all__ = [
    "DEFAULT_FPS",
    "VideoInfo",
    "VideoSource",
    "frame_at",
    "probe_video",
    "sample_frames",
    "to_rgb",
    "video_duration",
]

"""Between videos and pictures: keyframes of a clip, a photo as a one-frame clip, a clean remux.

* `keyframes`: N frames spread evenly over a clip, for vision models that take images
  but not video (the design's "a video part becomes N keyframes").
* `still_clip`: a photo as a one-frame video, so a photo goes through the same pose route
  (in-process or a remote pose node) as a video does.
* `strip_video`: the video stream alone, remuxed into a fresh MP4 without the container's
  or the stream's metadata (phones write the place a clip was filmed into it), for
  vision models that take video themselves.

PyAV and numpy are imported inside the functions; the video helpers of engines/video.py
do the probing, sampling and 4xx refusals.
"""

from __future__ import annotations

import io
from typing import Any


def keyframes(data: bytes, count: int, *, max_seconds: float) -> list[tuple[float, Any]]:
    """`count` frames ``(t, rgb)`` spread over the clip (fewer when it has fewer frames)."""
    from megacity.engines.video import probe_video, sample_frames

    info = probe_video(data, max_seconds=max_seconds)
    if count < 1:
        return []
    duration = max(info.duration_s, 1e-3)
    fps = min(max(count / duration, 0.01), 240.0)
    frames = list(sample_frames(data, fps=fps, max_seconds=max_seconds))
    if len(frames) <= count:
        return frames
    step = len(frames) / count
    return [frames[int(i * step)] for i in range(count)]


def still_clip(rgb: Any) -> bytes:
    """An RGB ``uint8`` picture as a one-frame MJPEG-in-AVI clip (sides made even)."""
    import av
    import numpy as np

    height, width = rgb.shape[:2]
    even = np.ascontiguousarray(rgb[: height - height % 2 or 2, : width - width % 2 or 2])
    out = io.BytesIO()
    with av.open(out, "w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height = even.shape[1], even.shape[0]
        stream.pix_fmt = "yuvj420p"
        frame = av.VideoFrame.from_ndarray(even, format="rgb24")
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


def strip_video(data: bytes, *, max_seconds: float) -> bytes:
    """The first video stream remuxed into a new MP4 (no audio, no metadata)."""
    import av

    from megacity.engines.video import probe_video

    probe_video(data, max_seconds=max_seconds)  # the 4xx for what is not a usable video
    out = io.BytesIO()
    with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as source:
        src = source.streams.video[0]
        with av.open(out, "w", format="mp4") as target:
            dst = target.add_stream_from_template(src)
            dst.metadata.clear()
            for packet in source.demux(src):
                if packet.dts is None:
                    continue
                packet.stream = dst
                target.mux(packet)
    return out.getvalue()


__all__ = ["keyframes", "still_clip", "strip_video"]

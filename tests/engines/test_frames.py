"""Keyframes of a clip, a photo as a one-frame clip, and a video remuxed without metadata."""

from __future__ import annotations

import io
import itertools

import av
import numpy as np
import pytest

from megacity.engines.frames import keyframes, still_clip, strip_video
from megacity.engines.video import probe_video
from megacity.errors import MegaCityError
from tests import video as V


def test_keyframes_are_spread_over_the_clip() -> None:
    shots = keyframes(V.numbered(4.0, 10), 4, max_seconds=60)
    times = [t for t, _ in shots]
    assert len(shots) == 4
    assert times[0] == pytest.approx(0.0, abs=0.15)
    assert all(b - a > 0.5 for a, b in itertools.pairwise(times))
    assert shots[0][1].shape == (48, 64, 3)
    # the frames are the clip's own: brightness encodes their index
    for t, rgb in shots:
        assert abs(float(rgb.mean()) - (10 * round(t * 10)) % 250) < 4


def test_a_short_clip_gives_the_frames_it_has() -> None:
    assert len(keyframes(V.numbered(0.3, 10), 8, max_seconds=60)) == 3


def test_keyframes_refuse_what_is_not_a_video() -> None:
    with pytest.raises(MegaCityError) as info:
        keyframes(V.TEXT, 4, max_seconds=60)
    assert info.value.code == "unsupported_video"


def test_a_photo_becomes_a_one_frame_clip() -> None:
    clip = still_clip(V.astronaut()[:301, :199])  # odd sides are made even
    info = probe_video(clip, max_seconds=10)
    assert (info.width, info.height) == (198, 300)
    [(t, rgb)] = keyframes(clip, 3, max_seconds=10)
    assert t == 0.0 and abs(float(rgb.mean()) - float(V.astronaut()[:300, :198].mean())) < 3


def test_strip_video_drops_metadata_and_audio() -> None:
    source = io.BytesIO()
    with av.open(source, "w", format="mp4") as container:
        container.metadata["location"] = "+37.5665+126.9780/"
        container.metadata["title"] = "my room"
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), i * 20, np.uint8), format="rgb24"
            )
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with av.open(io.BytesIO(source.getvalue())) as c:
        assert "location" in c.metadata
    clean = strip_video(V.talking_face(), max_seconds=60)
    with av.open(io.BytesIO(clean)) as c:
        assert [s.type for s in c.streams] == ["video"]
    clean = strip_video(source.getvalue(), max_seconds=60)
    assert b"37.5665" not in clean and b"my room" not in clean
    with av.open(io.BytesIO(clean)) as c:
        assert "location" not in c.metadata and "title" not in c.metadata
        assert sum(1 for _ in c.decode(video=0)) == 10

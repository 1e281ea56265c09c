"""Video input: probing, every refusal code, the time-based frame sampler, frame_at."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest

from megacity.engines.video import VideoInfo, frame_at, probe_video, sample_frames
from megacity.errors import MegaCityError
from tests import video as V


def _index(rgb: np.ndarray) -> int:
    """The frame index a `V.numbered` frame shows (brightness 10 * i)."""
    return round(float(rgb.mean()) / 10)


def test_probe_reports_the_clip() -> None:
    info = probe_video(V.moving_person(), max_seconds=60)
    assert info == VideoInfo(640, 480, 4.0, 30.0, 120, "h264", 0)


def test_probe_turns_a_portrait_phone_video() -> None:
    info = probe_video(V.moving_person(rotation=90), max_seconds=60)
    assert (info.width, info.height, info.rotation) == (640, 480, 90)


def test_probe_scans_packets_when_the_header_has_no_duration() -> None:
    data = V.streamed_webm(3.0)
    assert probe_video(data, max_seconds=60).duration_s == pytest.approx(3.0, abs=0.11)
    with pytest.raises(MegaCityError) as err:
        probe_video(data, max_seconds=1.0)
    assert err.value.code == "video_too_long"


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: b"", 400, "empty_video"),
        (lambda: V.TEXT, 415, "unsupported_video"),
        (lambda: V.RANDOM, 415, "unsupported_video"),
        (V.audio_only, 415, "no_video_stream"),
        (V.png_image, 415, "no_video_stream"),
        (V.zero_frames, 422, "no_frames"),
        (V.corrupt, 422, "corrupt_video"),
        (V.too_long, 422, "video_too_long"),
    ],
    ids=["empty", "text", "random", "audio", "png", "zero-frames", "corrupt", "too-long"],
)
def test_every_refusal_has_its_code(make: Callable[[], bytes], status: int, code: str) -> None:
    with pytest.raises(MegaCityError) as err:
        probe_video(make(), max_seconds=10)
    assert (err.value.status, err.value.code, err.value.param) == (status, code, "file")
    if code not in ("empty_video", "video_too_long"):
        with pytest.raises(MegaCityError) as again:
            list(sample_frames(make()))
        assert again.value.code == code


def test_30_fps_is_sampled_at_15_by_time() -> None:
    times = [t for t, _ in sample_frames(V.moving_person(), fps=15)]
    assert times == pytest.approx([k * 2 / 30 for k in range(60)], abs=1e-6)


def test_a_slower_source_gives_every_frame() -> None:
    frames = list(sample_frames(V.numbered(2.0, 10), fps=15))
    assert [t for t, _ in frames] == pytest.approx([i / 10 for i in range(20)], abs=1e-6)
    assert [_index(rgb) for _, rgb in frames] == list(range(20))


def test_variable_frame_rate_is_sampled_by_pts() -> None:
    data, times = V.vfr_person()
    sampled = [t for t, _ in sample_frames(data, fps=15)]
    assert set(np.round(sampled, 3)) <= set(times)
    first = [t for t in sampled if t < 1.0 - 1e-6]  # 30 fps part: every other frame
    assert np.diff(first) == pytest.approx(2 / 30, abs=2e-3)
    middle = [t for t in sampled if 1.0 - 1e-6 < t < 2.0 - 1e-6]  # 10 fps part: all of it
    assert middle == pytest.approx([t for t in times if 1.0 - 1e-6 < t < 2.0 - 1e-6])
    last = [t for t in sampled if t > 2.0 - 1e-6]  # 24 fps part: 15 a second
    assert 14 <= len(last) <= 16


@pytest.mark.parametrize("cuts", [(1.37, 2.9), (2.0,), (0.5, 1.0, 3.5)])
def test_segments_decoded_apart_equal_one_pass(cuts: tuple[float, ...]) -> None:
    for data in (V.moving_person(), V.vfr_person()[0], V.streamed_webm()):  # webm: no index
        whole = list(sample_frames(data, fps=15))
        bounds = [-math.inf, *cuts, math.inf]
        parts = [
            frame
            for start, end in itertools.pairwise(bounds)
            for frame in sample_frames(data, fps=15, start_s=start, end_s=end)
        ]
        assert [t for t, _ in parts] == [t for t, _ in whole]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(parts, whole, strict=True))


def test_a_segment_seeks_and_keeps_only_its_frames() -> None:
    frames = list(sample_frames(V.numbered(4.0, 10), fps=15, start_s=2.55, end_s=3.3))
    assert [t for t, _ in frames] == pytest.approx([2.6, 2.7, 2.8, 2.9, 3.0, 3.1, 3.2])
    assert [_index(rgb) % 25 for _, rgb in frames] == [i % 25 for i in range(26, 33)]


def test_decoding_stops_past_the_limit_whatever_the_header_says() -> None:
    seen: list[float] = []
    with pytest.raises(MegaCityError) as err:
        for t, _ in sample_frames(V.too_long(), fps=15, max_seconds=3.0):
            seen.append(t)
    assert err.value.code == "video_too_long"
    assert max(seen) <= 3.0 + 1.0


def test_rotation_is_applied_to_frames() -> None:
    for t, rgb in sample_frames(V.moving_person(rotation=90), fps=2):
        assert rgb.shape == (480, 640, 3) and rgb.flags.c_contiguous
        assert np.abs(rgb.astype(int) - V.render(V.MOVING, t)).mean() < 6
    upright = frame_at(V.moving_person(rotation=-90), 1.0)
    assert np.abs(upright.astype(int) - V.render(V.MOVING, 1.0)).mean() < 6


def test_frame_at_returns_the_frame_shown_then() -> None:
    data = V.numbered(3.0, 10)
    assert _index(frame_at(data, 1.23)) == 12
    assert _index(frame_at(data, 2.0)) == 20
    assert _index(frame_at(data, 0.0)) == 0
    assert _index(frame_at(data, -5.0)) == 0
    assert _index(frame_at(data, 99.0)) == 29 % 25  # brightness wraps at 250
    with pytest.raises(MegaCityError) as err:
        frame_at(V.TEXT, 0.0)
    assert err.value.code == "unsupported_video"
    with pytest.raises(MegaCityError) as err:
        frame_at(b"", 0.0)
    assert err.value.code == "empty_video"

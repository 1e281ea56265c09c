"""Audio decoding: every common format to 16 kHz mono float32; bad input → distinct 4xx codes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from megacity.engines.audio import SAMPLE_RATE, decode_audio
from megacity.errors import MegaCityError
from tests.audio import FORMATS, encode, samples_of, shared_wav, speak, tone_wav


@pytest.fixture(scope="module")
def spoken() -> tuple[np.ndarray, int]:
    return samples_of(speak("Decoding works in every format we accept.", "en"))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_common_format_decodes_to_16k_mono(fmt: str, spoken: tuple[np.ndarray, int]) -> None:
    samples, rate = spoken
    out = decode_audio(encode(samples, rate, fmt), max_seconds=600)
    assert out.dtype == np.float32 and out.ndim == 1
    # codecs pad a few ms (encoder delay, frame size); the length stays within 0.1 s
    assert abs(out.size / SAMPLE_RATE - samples.size / rate) < 0.1
    assert 0.01 < float(np.abs(out).max()) <= 1.5


def test_shared_wav_keeps_its_length_and_level() -> None:
    out = decode_audio(shared_wav("en1"), max_seconds=600)
    reference, rate = samples_of(shared_wav("en1"))
    assert rate == SAMPLE_RATE
    assert out.size == reference.size
    assert np.allclose(out, reference, atol=1e-4)


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_audio"),
        (os.urandom(4096), 415, "unsupported_audio"),
        (b"just some text, not audio\n" * 50, 415, "unsupported_audio"),
        (b"\x89PNG\r\n\x1a\n" + os.urandom(256), 415, "no_audio_stream"),
        (shared_wav("en1")[:44], 422, "corrupt_audio"),  # a header with no sound after it
        (shared_wav("en1")[:400], 422, "audio_too_short"),
    ],
    ids=["empty", "random-bytes", "text", "png", "header-only", "truncated"],
)
def test_bad_input_has_its_own_code(data: bytes, status: int, code: str) -> None:
    with pytest.raises(MegaCityError) as info:
        decode_audio(data, max_seconds=600)
    assert (info.value.status, info.value.code, info.value.param) == (status, code, "file")
    assert info.value.message


def test_audio_over_the_duration_limit_is_refused() -> None:
    with pytest.raises(MegaCityError) as info:
        decode_audio(tone_wav(3.0), max_seconds=2.0)
    assert (info.value.status, info.value.code) == (422, "audio_too_long")
    assert decode_audio(tone_wav(1.9), max_seconds=2.0).size == int(1.9 * SAMPLE_RATE)

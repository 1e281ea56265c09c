"""Every /v1/audio/speech format decodes back (with PyAV) to audio of the input's length."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from megacity.engines.audio_encode import FORMATS, MEDIA_TYPES, PCM_SAMPLE_RATE, encode_audio


def _tone(sample_rate: int, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _as_float(array: np.ndarray) -> np.ndarray:
    return array / np.float32(32768) if array.dtype.kind == "i" else array.astype(np.float32)


def _decode(data: bytes) -> tuple[np.ndarray, int, str]:
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        frames = [_as_float(f.to_ndarray()) for f in container.decode(stream)]
        name = stream.codec_context.name
    samples = np.concatenate([f.reshape(f.shape[0], -1)[0] for f in frames])
    return samples, stream.rate, name


@pytest.mark.parametrize("sample_rate", [16_000, 22_050])
@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "pcm"])
def test_each_format_decodes_to_the_same_duration(fmt: str, sample_rate: int) -> None:
    data, media_type = encode_audio(_tone(sample_rate), sample_rate, fmt)
    assert media_type == MEDIA_TYPES[fmt]
    samples, rate, _ = _decode(data)
    assert samples.size / rate == pytest.approx(1.5, abs=0.12)  # AAC adds its priming frame
    assert np.sqrt(np.mean(samples**2)) > 0.1  # the tone (RMS 0.35), not silence


def test_wav_is_16_bit_at_the_input_rate() -> None:
    data, _ = encode_audio(_tone(16_000), 16_000, "wav")
    assert data[:4] == b"RIFF"
    samples, rate, codec = _decode(data)
    assert (rate, codec, samples.size) == (16_000, "pcm_s16le", 24_000)


def test_pcm_is_raw_24khz_16_bit() -> None:
    data, media_type = encode_audio(_tone(22_050), 22_050, "pcm")
    assert media_type == "audio/pcm"
    pcm = np.frombuffer(data, dtype="<i2")
    assert pcm.size / PCM_SAMPLE_RATE == pytest.approx(1.5, abs=0.02)
    assert np.abs(pcm).max() > 10_000


def test_opus_is_ogg_and_out_of_range_samples_are_clipped() -> None:
    loud = _tone(16_000) * 4
    loud[:10] = np.nan
    data, media_type = encode_audio(loud, 16_000, "opus")
    assert (data[:4], media_type) == (b"OggS", "audio/ogg")
    samples, _, codec = _decode(data)
    assert codec == "opus" and np.isfinite(samples).all()


def test_unknown_format_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unsupported audio format"):
        encode_audio(_tone(16_000), 16_000, "ogg")

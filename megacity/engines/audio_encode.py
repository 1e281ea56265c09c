"""Float32 samples → the bytes of one of OpenAI's ``/v1/audio/speech`` formats.

WAV and raw PCM are written with the standard library and numpy; FLAC, MP3, Opus (in
Ogg) and AAC (ADTS) go through PyAV's bundled FFmpeg encoders. Each format is encoded
at the engine's own sample rate where the encoder allows it (a resample costs time and
adds nothing); raw ``pcm`` is 24 kHz 16-bit little-endian because that is what OpenAI
clients assume when they play it.
"""

from __future__ import annotations

import io
import wave

import av
import numpy as np
from av.audio.stream import AudioStream

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
PCM_SAMPLE_RATE = 24_000
# format → (container, encoder, bit rate in bit/s; None: lossless)
_AV_FORMATS: dict[str, tuple[str, str, int | None]] = {
    "mp3": ("mp3", "libmp3lame", 64_000),
    "opus": ("ogg", "libopus", 32_000),
    "aac": ("adts", "aac", 64_000),
    "flac": ("flac", "flac", None),
}


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str) -> tuple[bytes, str]:
    """Mono float32 samples in [-1, 1] at `sample_rate` Hz → (bytes, media type)."""
    if fmt not in MEDIA_TYPES:
        raise ValueError(f"unsupported audio format {fmt!r}; one of {', '.join(FORMATS)}")
    mono = np.clip(np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1)), -1.0, 1.0)
    if fmt == "wav":
        data = _wav(_int16(mono), sample_rate)
    elif fmt == "pcm":
        data = _resample_int16(mono, sample_rate, PCM_SAMPLE_RATE).tobytes()
    else:
        data = _encode_av(mono, sample_rate, *_AV_FORMATS[fmt])
    return data, MEDIA_TYPES[fmt]


def _int16(mono: np.ndarray) -> np.ndarray:
    return np.round(mono * 32767.0).astype("<i2")


def _wav(pcm: np.ndarray, sample_rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


def _frame(mono: np.ndarray, sample_rate: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = sample_rate
    return frame


def _resample_int16(mono: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target or mono.size == 0:
        return _int16(mono)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=target)
    frames = resampler.resample(_frame(mono, rate)) + resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype("<i2")


def _encode_av(
    mono: np.ndarray, sample_rate: int, container: str, codec: str, bit_rate: int | None
) -> bytes:
    rates = av.codec.Codec(codec, "w").audio_rates
    # The encoder's own rate nearest above ours (Opus has no 22.05 kHz): never lose band.
    rate = (
        sample_rate
        if not rates or sample_rate in rates
        else min((r for r in rates if r > sample_rate), default=max(rates))
    )
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, AudioStream)
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        # The codec context resamples to its sample format and rate and cuts the frames
        # to the encoder's frame size (1152 for MP3, 1024 AAC, 960 Opus) itself.
        if mono.size:
            for packet in stream.encode(_frame(mono, sample_rate)):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    return out.getvalue()


__all__ = ["FORMATS", "MEDIA_TYPES", "PCM_SAMPLE_RATE", "encode_audio"]

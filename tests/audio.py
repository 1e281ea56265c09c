"""Audio for speech tests: the shared espeak-ng sentences, new ones spoken by espeak-ng, and
the same sound re-encoded in the common formats (mp3, m4a, ogg/opus, webm, flac) with PyAV."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np

from megacity.testing import unavailable, wav_bytes

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
AUDIO_DIR = SHARED / "audio"
WHISPER_MODEL = str((SHARED / "models" / "whisper-random-tiny-ct2").resolve())

# Random weights never emit an end token: one temperature, greedy, few tokens (models README).
FAST_DECODING = {
    "device": "cpu",
    "compute_type": "int8",
    "beam_size": 1,
    "max_new_tokens": 16,
    "temperature": 0.0,
    "condition_on_previous_text": False,
    "cpu_threads": 1,
}
FAST_NODE_ARGS = (
    "--device",
    "cpu",
    "--compute-type",
    "int8",
    "--beam-size",
    "1",
    "--max-new-tokens",
    "16",
    "--temperature",
    "0",
    "--no-condition-on-previous-text",
    "--cpu-threads",
    "1",
)

FORMATS = {  # name: (container, codec, sample rate, MIME type)
    "mp3": ("mp3", "libmp3lame", 44_100, "audio/mpeg"),
    "m4a": ("ipod", "aac", 44_100, "audio/mp4"),
    "ogg": ("ogg", "libopus", 48_000, "audio/ogg"),
    "webm": ("webm", "libopus", 48_000, "audio/webm"),
    "flac": ("flac", "flac", 16_000, "audio/flac"),
}


def shared_wav(name: str) -> bytes:
    return (AUDIO_DIR / f"{name}.wav").read_bytes()


def shared_refs() -> dict[str, tuple[str, str]]:
    """id → (language, text) of the shared sentences."""
    refs = {}
    for line in (AUDIO_DIR / "refs.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            ident, language, text = line.split("\t")
            refs[ident] = (language, text)
    return refs


def require_espeak() -> str:
    """espeak-ng's path; a missing espeak-ng fails the test under CI=true, else skips it."""
    path = shutil.which("espeak-ng")
    if path is None:
        unavailable("espeak-ng is not installed (make test installs it: apt-get install espeak-ng)")
    return path


def speak(text: str, voice: str = "en", speed: int = 150) -> bytes:
    """A WAV file of espeak-ng saying `text` (22.05 kHz mono)."""
    espeak = require_espeak()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", str(speed), "-w", str(out), text],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return out.read_bytes()


def samples_of(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate, decoded with PyAV (test side)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [
            out.to_ndarray().reshape(-1)
            for frame in container.decode(stream)
            for out in resampler.resample(frame)
        ]
    return np.concatenate(chunks), rate


def encode(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    """Encode mono float32 samples in one of FORMATS."""
    container_fmt, codec, out_rate, _ = FORMATS[fmt]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container_fmt) as container:
        stream = container.add_stream(codec, rate=out_rate, layout="mono")
        ctx = stream.codec_context
        resampler = av.AudioResampler(format=ctx.format, layout=ctx.layout, rate=out_rate)
        frame = av.AudioFrame.from_ndarray(
            samples[None, :].astype(np.float32), format="flt", layout="mono"
        )
        frame.rate = rate
        for out in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(out):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def tone_wav(seconds: float, rate: int = 16_000) -> bytes:
    """A 16-bit PCM WAV of a quiet 440 Hz tone."""
    t = np.arange(int(seconds * rate)) / rate
    return wav_bytes(0.2 * np.sin(2 * np.pi * 440 * t), rate)

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


def speak(text: str, voice: str = "en", speed: int = 150, pitch: int = 50) -> bytes:
    """A WAV file of espeak-ng saying `text` (22.05 kHz mono) at `speed` wpm, base `pitch` 0-99."""
    espeak = require_espeak()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text],
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


# A tune of four phrases of four notes (MIDI numbers), each phrase followed by a rest.
MELODY = ((60, 62, 64, 65), (67, 65, 64, 62), (64, 64, 65, 67), (69, 67, 65, 64))
NOTE_S, REST_S = 0.35, 0.4


def sing(
    cents: float = 0.0,
    *,
    tempo: float = 1.0,
    start_s: float = 0.3,
    wrong_note: tuple[int, int] | None = None,
    glide: bool = False,
    rate: int = 16_000,
) -> np.ndarray:
    """A sung-like voice (three harmonics, 5 Hz vibrato) singing MELODY ``cents`` off key.

    ``wrong_note`` = (phrase, note) is sung three semitones too high; ``glide`` slides
    between the notes of a phrase instead of stepping; ``tempo`` > 1 sings faster.
    """
    out = [np.zeros(int(start_s * rate))]
    phase = 0.0
    for k, phrase in enumerate(MELODY):
        midi = np.array(phrase, dtype=np.float64) + ((np.arange(4) == wrong_note[1]) * 3.0 if wrong_note and wrong_note[0] == k else 0.0)  # fmt: skip
        m = int(NOTE_S / tempo * rate)
        t = np.arange(4 * m) / rate
        if glide:
            notes = np.interp(np.arange(4 * m), np.arange(4) * m + m / 2, midi)
        else:
            notes = np.repeat(midi, m)
        f0 = 440 * 2 ** ((notes - 69 + cents / 100) / 12) * (1 + 0.003 * np.sin(2 * np.pi * 5 * t))
        ph = phase + 2 * np.pi * np.cumsum(f0) / rate
        phase = float(ph[-1])
        local = t % (m / rate) if not glide else t
        length = m / rate if not glide else 4 * m / rate
        env = np.minimum(1, np.minimum(local / 0.02, (length - local) / 0.03))
        out.append(env * (0.3 * np.sin(ph) + 0.15 * np.sin(2 * ph) + 0.08 * np.sin(3 * ph)))
        out.append(np.zeros(int(REST_S / tempo * rate)))
    return np.concatenate(out).astype(np.float32)

"""The audio watermark on real speech (espeak-ng) and a tone: robust, inaudible, keyed."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.signal import resample_poly

from megacity.safety.audio_watermark import PRESENT_Z, mark_snr_db
from megacity.safety.watermark import verify_audio, verify_file, watermark_audio
from megacity.testing import wav_bytes

RATE = 22_050  # espeak-ng's
SENTENCES = {
    "ko": "안녕하세요. 오늘은 한국어 발음 연습을 함께 해 보겠습니다. 천천히 따라 읽어 보세요.",
    "en": "The quick brown fox jumps over the lazy dog, then runs into the forest to find its friends.",
}


def _speech(voice: str) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    cmd = ["espeak-ng", "--stdout", "-v", voice, SENTENCES[voice]]
    wav = subprocess.run(cmd, capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        assert reader.getframerate() == RATE
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), "<i2")
    return (pcm / 32768).astype(np.float32)


def _tone() -> np.ndarray:
    t = np.arange(5 * RATE) / RATE
    noise = np.random.default_rng(3).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.03 * noise).astype(np.float32)


@pytest.fixture(scope="module")
def hosts() -> dict[str, np.ndarray]:
    return {"ko": _speech("ko"), "en": _speech("en"), "tone": _tone()}


@pytest.fixture(scope="module")
def marked(hosts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: watermark_audio(x, RATE) for name, x in hosts.items()}


def _wav_round_trip(x: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes((np.clip(x, -1, 1) * 32767).round().astype("<i2").tobytes())
    with wave.open(io.BytesIO(buf.getvalue())) as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), "<i2") / 32768.0


def _with_noise(x: np.ndarray, snr_db: float) -> np.ndarray:
    power = float(np.mean(x.astype(np.float64) ** 2))
    noise = np.random.default_rng(5).standard_normal(x.size) * np.sqrt(power / 10 ** (snr_db / 10))
    return x + noise


def _middle(x: np.ndarray, seconds: float) -> np.ndarray:
    half = int(seconds * RATE) // 2
    return x[x.size // 2 - half + 123 : x.size // 2 + half + 123]  # off the 1 s grid


EDITS = {
    "as is": lambda x: x,
    "16-bit WAV": _wav_round_trip,
    "gain 0.5": lambda x: 0.5 * x,
    "white noise 30 dB": lambda x: _with_noise(x, 30.0),
    "2 s excerpt": lambda x: _middle(x, 2.0),
}


@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("host", ["ko", "en", "tone"])
def test_mark_survives(marked: dict[str, np.ndarray], host: str, edit: str) -> None:
    check = verify_audio(EDITS[edit](marked[host]), RATE)
    assert check.present and check.score >= PRESENT_Z
    assert check.method == "spread-spectrum-v1"


@pytest.mark.parametrize("host", ["ko", "en", "tone"])
def test_mark_is_quiet_and_shape_preserved(
    hosts: dict[str, np.ndarray], marked: dict[str, np.ndarray], host: str
) -> None:
    assert marked[host].dtype == np.float32 and marked[host].shape == hosts[host].shape
    assert np.max(np.abs(marked[host])) <= 1.0
    assert mark_snr_db(hosts[host], marked[host]) >= 30.0


def test_unmarked_audio_does_not_verify(hosts: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(11)
    plain = [*hosts.values(), 0.1 * rng.standard_normal(3 * RATE), np.zeros(3 * RATE)]
    for x in plain:
        check = verify_audio(x.astype(np.float32), RATE)
        assert not check.present and abs(check.score) < 6.0


def test_wrong_key_does_not_verify(hosts: dict[str, np.ndarray]) -> None:
    own = watermark_audio(hosts["en"], RATE, key="operator-secret")
    assert verify_audio(own, RATE, key="operator-secret").present
    assert abs(verify_audio(own, RATE).score) < 6.0


def test_silence_carries_no_mark_and_short_audio_is_not_an_error() -> None:
    silence = np.zeros(RATE, dtype=np.float32)
    assert np.array_equal(watermark_audio(silence, RATE), silence)
    short = verify_audio(np.ones(RATE // 4, dtype=np.float32) * 0.1, RATE)
    assert not short.present and short.score == 0.0


@pytest.mark.parametrize(
    "bad", [np.array([], np.float32), np.array([0.1, np.nan] * RATE, np.float32)]
)
def test_empty_or_nan_audio_is_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        watermark_audio(bad, RATE)
    with pytest.raises(ValueError):
        verify_audio(bad, RATE)


def test_report_resampling(marked: dict[str, np.ndarray]) -> None:
    """Not a guarantee: prints whether 22.05 → 16 kHz resampling keeps the mark."""
    for name, x in marked.items():
        at_16k = resample_poly(x, 320, 441)
        print(
            f"{name}: z {verify_audio(x, RATE).score:.1f}; at 16 kHz {verify_audio(at_16k, 16_000).score:.1f}"
        )


def test_verify_file_reads_wav_png_and_refuses_junk(
    marked: dict[str, np.ndarray], hosts: dict[str, np.ndarray], tmp_path: Path
) -> None:
    wav = tmp_path / "speech.wav"
    wav.write_bytes(wav_bytes(marked["ko"], RATE))
    assert verify_file(wav).present
    plain = tmp_path / "plain.wav"
    plain.write_bytes(wav_bytes(hosts["ko"], RATE))
    assert not verify_file(plain).present
    png = tmp_path / "picture.png"
    y, x = np.mgrid[0:256, 0:256]
    Image.fromarray(np.stack([x, y, x // 2 + y // 2], -1).astype(np.uint8)).save(png)
    assert not verify_file(png).present
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(ValueError, match="neither an image nor audio"):
        verify_file(junk)


def test_dense_full_scale_audio_is_marked_stronger_until_it_reads_back() -> None:
    # Clipped white noise at full scale (what a random-weight TTS model says): at the
    # default strength the mark would read back at z ≈ 8, and clipping would cut it off.
    rate = 16_000
    rng = np.random.default_rng(5)
    noise = np.clip(rng.normal(0, 1.2, rate * 5), -1, 1).astype(np.float32)
    marked = watermark_audio(noise, rate)
    check = verify_audio(_wav_round_trip(marked).astype(np.float32), rate)
    assert check.present and check.score >= 12, check
    assert np.abs(marked).max() <= 1.0
    assert 19.5 <= mark_snr_db(noise * 0.95 / np.abs(noise).max(), marked) < 32
    plain = watermark_audio(noise, rate, min_z=None)  # one pass at the default strength
    assert verify_audio(plain, rate).score < check.score

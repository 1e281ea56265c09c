"""Keyed spread-spectrum watermark for generated speech (TTS) and other audio.

No pip-installable audio watermark works without downloading model weights (AudioSeal and
WavMark fetch theirs from a hub), so this is the classical scheme, in numpy:

* **Mark.** A key-derived pseudo-random QPSK chip ``P_k = exp(iπ(2q_k + 1)/4)`` on every 1 Hz
  bin ``k`` from 1 to 4 kHz (to 0.45·rate at low rates) defines a band-limited noise ``p(t)``
  with a period of one second. The chips depend on the key and on frequency only, never
  on the sample rate, so the mark is the same continuous-time signal at 8-48 kHz and
  survives resampling.
* **Embedding.** ``y = x + strength · env(x) · p`` where ``env`` is the host's 20 ms moving
  RMS: the mark is ``strength`` (≈ −32 dB) below the signal wherever there is signal, and
  absent in silence, where it would be audible hiss. Silence therefore carries no mark.
* **Detection.** Whiten in time and frequency (divide each 32 ms STFT bin by its
  magnitude: the mark is then read where the speech is weak, between harmonics and
  between words; measured on espeak-ng speech this raises z from ~12 to ~45), fold modulo
  one second (the mark adds up coherently, the speech does not), keep only the phases of
  the 1–4 kHz bins and correlate with the chips at every circular lag (half-sample steps)
  with one inverse FFT: an excerpt is found at whatever offset it starts.

**Calibration.** For audio not marked with this key, each of the ``K`` band bins contributes
``Re(u_k · conj(P_k))`` with ``P_k`` uniform over four phases independent of the audio, so
every lag's correlation has mean 0 and variance ``K/2`` whatever the audio is: ``z = r /
sqrt(K/2)`` is ~N(0, 1) with no need to estimate noise. ``present`` is ``|z| ≥ 8`` at the best
lag (either polarity); by the union bound over the ``2·rate`` lags and two signs the false-
positive rate is at most ``4 · 48000 · Q(8) ≈ 1.2e-10`` per clip at 48 kHz.

Audio shorter than ``MIN_DURATION_S`` is reported as not marked (``score`` 0), not an error.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
from scipy.signal import istft, stft

from megacity.safety.image_watermark import DEFAULT_WATERMARK_KEY, WatermarkCheck

METHOD = "spread-spectrum-v1"
DEFAULT_STRENGTH = 0.025  # mark RMS / signal RMS, locally: 20·log10(0.025) ≈ −32 dB
PRESENT_Z = 8.0  # false-positive rate ≤ 1.2e-10 per clip (module docstring)
ENSURE_Z = 12.0  # what embedding aims for: a margin over PRESENT_Z for later processing
MAX_STRENGTH = 0.1  # −20 dB: the strongest mark embedding may use
HEADROOM = 0.95  # peak a full-scale host is lowered to before marking
MIN_DURATION_S = 0.5
MIN_RATE, MAX_RATE = 8_000, 48_000  # Hz
BAND_HZ = (1_000, 4_000)
ENVELOPE_S = 0.02  # moving-RMS window of the envelope the mark follows

_CONTEXT = b"megacity-audio-watermark"
_PERIOD_S = 1  # the pattern repeats every second; integer so rate · period is whole
_WHITEN_FRAME_S = 0.032
_WHITEN_FLOOR = 0.01  # of the mean STFT magnitude: near-silent bins are not blown up
_UPSAMPLE = 2  # correlate at half-sample lags: a resampled mark falls between samples


def _chips(key: str) -> np.ndarray:
    """Unit-magnitude QPSK chips for 1 Hz bins 0..4 kHz (complex128), seeded by HMAC(key)."""
    seed = hmac.new(key.encode(), _CONTEXT, hashlib.sha256).digest()
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "big")))
    quarter_turns = rng.integers(0, 4, size=BAND_HZ[1] * _PERIOD_S + 1)
    return np.exp(1j * np.pi * (2 * quarter_turns + 1) / 4)


def _band(sample_rate: int) -> slice:
    """The FFT bins (1/period Hz apart) the mark occupies at ``sample_rate``."""
    high = min(BAND_HZ[1], int(0.45 * sample_rate))
    return slice(BAND_HZ[0] * _PERIOD_S, high * _PERIOD_S + 1)


def _check(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``samples`` as float64 mono; ``ValueError`` for empty, NaN, multi-channel or odd rates."""
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise ValueError(f"sample rate {sample_rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    array = np.asarray(samples)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected float samples in [-1, 1], got {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"expected mono samples (1-D), got shape {array.shape}")
    if array.size == 0:
        raise ValueError("no audio samples")
    if not np.all(np.isfinite(array)):
        raise ValueError("audio contains NaN or infinite samples")
    return array.astype(np.float64)


def _pattern(key: str, sample_rate: int) -> np.ndarray:
    """One period of the mark at ``sample_rate``, unit RMS (float64)."""
    n = sample_rate * _PERIOD_S
    spectrum = np.zeros(n // 2 + 1, dtype=np.complex128)
    band = _band(sample_rate)
    spectrum[band] = _chips(key)[band]
    pattern = np.fft.irfft(spectrum, n=n)
    return pattern / np.sqrt(np.mean(pattern**2))


def _envelope(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Moving RMS of ``x`` over ``ENVELOPE_S`` (centred), same length as ``x``."""
    width = max(1, int(ENVELOPE_S * sample_rate))
    power = np.concatenate(([0.0], np.cumsum(x**2)))
    lo = np.clip(np.arange(x.size) - width // 2, 0, x.size)
    hi = np.clip(lo + width, 0, x.size)
    return np.sqrt(np.maximum(power[hi] - power[lo], 0.0) / np.maximum(hi - lo, 1))


def watermark_audio(
    samples: np.ndarray,
    sample_rate: int,
    *,
    key: str = DEFAULT_WATERMARK_KEY,
    strength: float = DEFAULT_STRENGTH,
    min_z: float | None = ENSURE_Z,
) -> np.ndarray:
    """``samples`` (mono, [-1, 1], rate in Hz) with the keyed mark added: float32, same length.

    With ``min_z`` the result is read back (as 16-bit PCM) and, while its z-score is
    below ``min_z``, marked again 1.6× stronger, up to ``MAX_STRENGTH`` (−20 dB): speech
    passes at once (z ≈ 45), dense noise-like audio needs more. A host that touches full
    scale is first lowered to ``HEADROOM`` peak, since clipping would cut the mark off.
    Audio too short to carry a readable mark (< ``MIN_DURATION_S``) is marked once.
    """
    if not 0.0 < strength <= 0.5:
        raise ValueError(f"strength {strength} is outside (0, 0.5]")
    x = _check(samples, sample_rate)
    peak = float(np.abs(x).max())
    if peak > HEADROOM:
        x = x * (HEADROOM / peak)
    shaped = np.resize(_pattern(key, sample_rate), x.size) * _envelope(x, sample_rate)
    while True:
        marked = np.clip(x + shaped * strength, -1.0, 1.0).astype(np.float32)
        if min_z is None or x.size < MIN_DURATION_S * sample_rate or strength >= MAX_STRENGTH:
            return marked
        pcm = np.round(marked * 32767.0) / 32768.0
        if abs(verify_audio(pcm, sample_rate, key=key).score) >= min_z:
            return marked
        strength = min(strength * 1.6, MAX_STRENGTH)


def _whiten(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """``x`` with every STFT bin scaled to unit magnitude (plus a floor), same length."""
    frame = int(2 ** np.round(np.log2(_WHITEN_FRAME_S * sample_rate)))
    _, _, bins = stft(x, nperseg=frame)
    magnitude = np.abs(bins)
    floor = _WHITEN_FLOOR * float(magnitude.mean()) + 1e-12
    _, y = istft(bins / (magnitude + floor), nperseg=frame)
    return np.asarray(y[: x.size], dtype=np.float64)


def mark_snr_db(original: np.ndarray, marked: np.ndarray) -> float:
    """Signal-to-mark ratio in dB: power of ``original`` over power of ``marked − original``."""
    x, y = np.asarray(original, np.float64), np.asarray(marked, np.float64)
    noise = float(np.sum((y - x) ** 2))
    return float("inf") if noise == 0.0 else 10.0 * np.log10(float(np.sum(x**2)) / noise)


def verify_audio(
    samples: np.ndarray, sample_rate: int, *, key: str = DEFAULT_WATERMARK_KEY
) -> WatermarkCheck:
    """Detect the mark: ``score`` is the z-score (signed) of the best lag; present when |z| ≥ 8."""
    x = _check(samples, sample_rate)
    if x.size < MIN_DURATION_S * sample_rate:
        return WatermarkCheck(present=False, score=0.0, method=METHOD, metadata={})
    n = sample_rate * _PERIOD_S
    folded = np.pad(_whiten(x, sample_rate), (0, -x.size % n)).reshape(-1, n).sum(axis=0)
    band = _band(sample_rate)
    spectrum = np.fft.rfft(folded)[band]
    magnitude = np.abs(spectrum)
    usable = magnitude > 1e-12 * max(float(magnitude.max()), 1e-300)  # silence has no phase
    bins = int(np.count_nonzero(usable))
    if bins == 0:
        return WatermarkCheck(present=False, score=0.0, method=METHOD, metadata={})
    cross = np.zeros(n // 2 + 1, dtype=np.complex128)
    phases = np.where(usable, spectrum / np.where(usable, magnitude, 1.0), 0.0)
    cross[band] = phases * np.conj(_chips(key)[band])
    # irfft(C, m) = (2/m) Σ_k Re(C_k e^{2πikτ/m}) over the band: undo the 2/m.
    correlation = np.fft.irfft(cross, n=n * _UPSAMPLE) * (n * _UPSAMPLE / 2)
    z = correlation / np.sqrt(bins / 2)
    best = int(np.argmax(np.abs(z)))
    score = float(z[best])
    start = (-best) % z.size / (_UPSAMPLE * sample_rate)  # where in the 1 s period x begins
    return WatermarkCheck(
        present=abs(score) >= PRESENT_Z,
        score=score,
        method=METHOD,
        metadata={"period_offset_s": f"{start:.4f}"},
    )

"""espeak-ng, the TTS engine's CPU fallback: a subprocess per request, WAV read from stdout.

It needs no model files and speaks about a hundred languages, so a node without
weights (or without torch) still answers ``/v1/audio/speech`` — robotic, but quickly
and intelligibly. The text goes in on stdin, never on the command line, so no input
can become an option; every run has a timeout.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np

from megacity.errors import BadRequest, UnprocessableEntity

SAMPLE_RATE = 22_050  # espeak-ng's only output rate
# Language codes the platform uses → espeak-ng voice names.
LANGUAGE_VOICES = {"ko": "ko", "en": "en-us", "ja": "ja", "zh": "cmn"}
# Style → (words per minute, pitch 0..99, amplitude 0..200); espeak's defaults are 175/50/100.
STYLE_PRESETS: dict[str, tuple[int, int, int]] = {
    "neutral": (175, 50, 100),
    "happy": (190, 65, 110),
    "sad": (140, 35, 80),
    "calm": (150, 45, 90),
    "excited": (215, 75, 120),
}
_MIN_WPM, _MAX_WPM = 80, 450  # espeak-ng's accepted range for -s
_TIMEOUT_BASE_S = 10.0
_TIMEOUT_PER_CHAR_S = 0.01


def find_espeak() -> str | None:
    """The espeak-ng executable's path, or None when it is not installed."""
    return shutil.which("espeak-ng")


class Espeak:
    """One espeak-ng executable and the voices it has (listed once)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.voices = self._list_voices()

    def _list_voices(self) -> frozenset[str]:
        listing = subprocess.run(
            [self.binary, "--voices"], capture_output=True, text=True, timeout=_TIMEOUT_BASE_S
        )
        names: set[str] = set()
        for line in listing.stdout.splitlines()[1:]:  # Pty Language Age/Gender VoiceName File …
            parts = line.split()
            if len(parts) >= 5:  # -v takes the language, the voice name or the file
                names.update((parts[1], parts[3], parts[4], parts[4].rsplit("/", 1)[-1]))
        return frozenset(names)

    def resolve_voice(self, voice: str) -> str:
        """A language code or an espeak-ng voice name → the voice name; 400 unknown_voice."""
        name = LANGUAGE_VOICES.get(voice.lower(), voice)
        if name.split("+", 1)[0] not in self.voices:  # "+f3": a variant, which never fails
            raise BadRequest(
                f"unknown voice {voice!r}: use a language code"
                f" ({', '.join(sorted(LANGUAGE_VOICES))}) or an espeak-ng voice name",
                code="unknown_voice",
                param="voice",
            )
        return name

    def synthesize(self, text: str, voice: str, style: str, speed: float) -> np.ndarray:
        """Speak `text` (float32 mono at SAMPLE_RATE); `voice` as resolve_voice returns it."""
        wpm, pitch, amplitude = STYLE_PRESETS[style]
        wpm = min(max(round(wpm * speed), _MIN_WPM), _MAX_WPM)
        command = [self.binary, "--stdout", "-v", voice, "-s", str(wpm)]
        command += ["-p", str(pitch), "-a", str(amplitude)]
        try:
            done = subprocess.run(
                command,
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=_TIMEOUT_BASE_S + _TIMEOUT_PER_CHAR_S * len(text),
                check=True,
            )
        except subprocess.CalledProcessError as exc:
            reason = exc.stderr.decode("utf-8", "replace").strip()[:200]
            raise UnprocessableEntity(
                f"espeak-ng could not speak the text ({reason})", code="synthesis_failed"
            ) from None
        return _read_wav(done.stdout)


def _read_wav(data: bytes) -> np.ndarray:
    # On a pipe espeak-ng cannot seek back to fill in the sizes, so the header claims
    # ~2**31 frames: read whatever follows it instead.
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise UnprocessableEntity("espeak-ng wrote unexpected audio", code="synthesis_failed")
        pcm = wav.readframes(wav.getnframes())
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0

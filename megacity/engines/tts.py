"""The in-process TTS engine: an MMS-TTS (VITS) model through transformers, or espeak-ng.

The neural model is loaded on first use (or at start with ``warmup``) in a worker
thread. When it cannot be loaded (no torch, no weights) and ``fallback`` is
``espeak-ng``, the engine warns once and speaks with espeak-ng from then on; the
result's ``engine`` says which one ran. VITS has no style input, so styles are
*prosody presets*: speaking rate and the two noise scales (espeak-ng: speed, pitch,
amplitude). VITS degrades on long inputs, so text is spoken sentence by sentence.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from megacity.engines.errors import ModelUnavailable
from megacity.engines.loading import FAILED_LOAD_RETRY_S, SlotEngine, failure_detail
from megacity.engines.tts_espeak import LANGUAGE_VOICES, Espeak, find_espeak
from megacity.engines.tts_espeak import SAMPLE_RATE as ESPEAK_SAMPLE_RATE
from megacity.engines.tts_vits import PROSODY_PRESETS, Vits
from megacity.errors import BadRequest, UnprocessableEntity

log = logging.getLogger("megacity.tts")

ESPEAK = "espeak-ng"
STYLES = tuple(PROSODY_PRESETS)
MIN_SPEED, MAX_SPEED = 0.25, 4.0  # OpenAI's range for /v1/audio/speech
_CHUNK_CHARS = 200  # VITS was trained on sentences; longer inputs slur
_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+|\n+")


@dataclass(frozen=True, slots=True)
class TTSEngineConfig:
    """A TTS node's `options`: model (VITS folder, hub name or "espeak-ng"), device, limits."""

    model: str = "facebook/mms-tts-kor"
    device: str = "auto"  # auto | cpu | cuda
    fallback: str | None = ESPEAK  # when the model cannot be loaded; None: ModelUnavailable
    voice: str = "ko"  # default language code or espeak-ng voice name
    max_chars: int = 2000
    max_concurrency: int = 1
    warmup: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TTSEngineConfig:
        """Validate a node's `options` mapping; ValueError names an unknown or bad key."""
        known = {f.name for f in fields(cls)}
        for key in options:
            if key not in known:
                raise ValueError(f"tts engine: unknown option {key!r}")
        config = cls(**options)
        if config.device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"tts engine: device must be auto, cuda or cpu, not {config.device!r}")
        if config.fallback not in (None, ESPEAK):
            raise ValueError(f"tts engine: fallback must be {ESPEAK} or null")
        for name in ("max_chars", "max_concurrency"):
            value = getattr(config, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"tts engine: {name} must be a positive integer")
        for name in ("model", "voice"):
            if not isinstance(getattr(config, name), str) or not getattr(config, name):
                raise ValueError(f"tts engine: {name} must be a non-empty string")
        if not isinstance(config.warmup, bool):
            raise ValueError("tts engine: warmup must be true or false")
        return config

    def resolved_model(self) -> str:
        """A local folder as an absolute path, anything else as the model name it is."""
        path = Path(self.model).expanduser()
        return str(path.resolve()) if path.exists() else self.model


@dataclass(frozen=True, slots=True)
class SpeechSynthesis:
    """Spoken text: float32 mono samples in [-1, 1] at `sample_rate` Hz, and what made them."""

    samples: np.ndarray
    sample_rate: int
    engine: str  # "vits" or "espeak-ng"
    model: str
    voice: str
    style: str


class TTSEngine(SlotEngine):
    """VITS or espeak-ng in this process; `synthesize` is safe to call from many requests."""

    def __init__(self, config: TTSEngineConfig, name: str = "tts") -> None:
        self.config = config
        self.name = name
        super().__init__("tts", config.model, config.max_concurrency, f"tts-{name}")
        self.degraded: str | None = None  # why the neural model is not used, when espeak serves

    @property
    def model_name(self) -> str:
        """The model that speaks: the configured one, or espeak-ng when it serves."""
        return ESPEAK if isinstance(self._slot.value, Espeak) else self.config.model

    def _build(self) -> Vits | Espeak:
        cfg = self.config
        if cfg.model == ESPEAK:
            return _espeak()
        try:
            return Vits(cfg.resolved_model(), cfg.device)
        except Exception as exc:
            if cfg.fallback != ESPEAK:
                raise
            try:
                espeak = _espeak()
            except Exception as fallback_exc:
                raise RuntimeError(
                    f"{failure_detail(exc)}; fallback: {failure_detail(fallback_exc)}"
                ) from exc
            self.degraded = failure_detail(exc)
            log.warning(
                "tts model failed to load; speaking with espeak-ng",
                extra={"model": cfg.model, "error": self.degraded},
            )
            return espeak

    def _unavailable(self, detail: str) -> ModelUnavailable:
        return ModelUnavailable(
            f"tts model {self.config.model!r} could not be loaded ({detail}). Set the node's"
            " options.model to a local transformers VITS folder (e.g. a saved"
            " facebook/mms-tts-kor) or a hub name this machine can download, install the"
            " torch extra, or install espeak-ng and set options.fallback: espeak-ng.",
            retry_after_s=int(FAILED_LOAD_RETRY_S),
        )

    async def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        style: str = "neutral",
        speed: float = 1.0,
        seed: int | None = None,
    ) -> SpeechSynthesis:
        """Speak `text` in a worker thread; 4xx for bad input, 503 when nothing can speak."""
        clean = self._check(text, style, speed)
        chosen = voice or self.config.voice
        return await self._in_line(
            lambda backend: self._synthesize(backend, clean, chosen, style, speed, seed)
        )

    def _check(self, text: str, style: str, speed: float) -> str:
        if len(text) > self.config.max_chars:
            raise UnprocessableEntity(
                f"the input has {len(text)} characters; this engine speaks at most"
                f" {self.config.max_chars}",
                code="input_too_long",
                param="input",
            )
        clean = clean_text(text)
        if not clean:
            raise BadRequest("the input has nothing to speak", code="empty_input", param="input")
        if style not in STYLES:
            raise BadRequest(
                f"unknown style {style!r}; one of {', '.join(STYLES)}",
                code="unknown_style",
                param="style",
            )
        if not (isinstance(speed, int | float) and MIN_SPEED <= speed <= MAX_SPEED):
            raise BadRequest(
                f"speed must be between {MIN_SPEED} and {MAX_SPEED}",
                code="invalid_speed",
                param="speed",
            )
        return clean

    def _synthesize(
        self,
        backend: Vits | Espeak,
        text: str,
        voice: str,
        style: str,
        speed: float,
        seed: int | None,
    ) -> SpeechSynthesis:
        if isinstance(backend, Espeak):
            name = backend.resolve_voice(voice)
            samples = backend.synthesize(text, name, style, speed)
            rate, engine = ESPEAK_SAMPLE_RATE, ESPEAK
        else:
            self._check_language_voice(voice)
            samples = backend.synthesize(split_sentences(text), style, speed, seed)
            rate, engine = backend.sample_rate, "vits"
        samples = np.clip(np.nan_to_num(samples), -1.0, 1.0).astype(np.float32, copy=False)
        return SpeechSynthesis(samples, rate, engine, self.model_name, voice, style)

    def _check_language_voice(self, voice: str) -> None:
        # An MMS model speaks one language in one voice: it takes the platform's language
        # codes (which espeak-ng also takes, should it have to step in) and its own voice.
        if voice.lower() not in LANGUAGE_VOICES and voice != self.config.voice:
            raise BadRequest(
                f"unknown voice {voice!r}: this model takes a language code"
                f" ({', '.join(sorted(LANGUAGE_VOICES))})",
                code="unknown_voice",
                param="voice",
            )


def clean_text(text: str) -> str:
    """Control and format characters dropped, line breaks kept, runs of spaces collapsed."""
    kept = "".join(
        c if c == "\n" else " " if c in "\t\r\v\f" else c
        for c in text
        if c in "\n\t\r\v\f" or not unicodedata.category(c).startswith("C")
    )
    lines = (" ".join(line.split()) for line in kept.split("\n"))
    return "\n".join(line for line in lines if line)


def split_sentences(text: str, max_chars: int = _CHUNK_CHARS) -> list[str]:
    """Sentences, merged up to `max_chars`; an over-long sentence is cut between words."""
    chunks: list[str] = []
    for sentence in filter(None, (s.strip() for s in _SENTENCE_END.split(text))):
        words = sentence.split(" ")
        while words:
            piece = words.pop(0)
            while words and len(piece) + 1 + len(words[0]) <= max_chars:
                piece += " " + words.pop(0)
            if chunks and len(chunks[-1]) + 1 + len(piece) <= max_chars:
                chunks[-1] += " " + piece
            else:
                chunks.append(piece)
    return chunks


def _espeak() -> Espeak:
    binary = find_espeak()
    if binary is None:
        raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng)")
    return Espeak(binary)


__all__ = [
    "ESPEAK",
    "MAX_SPEED",
    "MIN_SPEED",
    "PROSODY_PRESETS",
    "STYLES",
    "SpeechSynthesis",
    "TTSEngine",
    "TTSEngineConfig",
    "clean_text",
    "split_sentences",
]

"""The in-process speech engine: faster-whisper (CTranslate2), loaded once, bounded concurrency.

The model is loaded on first use (or at start with ``warmup``) in a worker thread, so
the router starts in well under a second even when the model takes seconds to load.
Transcriptions run on a pool of ``workers`` threads, which is also faster-whisper's
``num_workers``: more requests than that wait in line, they never run side by side on
the same model instance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from megacity.engines.audio import SAMPLE_RATE
from megacity.engines.errors import ModelUnavailable
from megacity.engines.loading import FAILED_LOAD_RETRY_S, SlotEngine

log = logging.getLogger("megacity.speech")

_LANGUAGE_NAMES = {
    "en": "english",
    "ko": "korean",
    "ja": "japanese",
    "zh": "chinese",
    "de": "german",
    "es": "spanish",
    "fr": "french",
    "ru": "russian",
    "pt": "portuguese",
    "it": "italian",
    "vi": "vietnamese",
    "th": "thai",
    "id": "indonesian",
}


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word: seconds from the start of the audio, probability 0..1."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    """One decoded segment (seconds), with its words when word timings were asked for."""

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0


@dataclass(frozen=True, slots=True)
class Transcript:
    """A whole transcription: text, language code, audio duration (s), segments."""

    text: str
    language: str
    duration: float
    segments: tuple[Segment, ...]

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    def to_verbose_json(self, *, words: bool = True, segments: bool = True) -> dict[str, Any]:
        """OpenAI's verbose_json body; words carry `probability` beside start and end."""
        body: dict[str, Any] = {
            "task": "transcribe",
            "language": _LANGUAGE_NAMES.get(self.language, self.language),
            "duration": round(self.duration, 3),
            "text": self.text,
        }
        if segments:
            body["segments"] = [
                {
                    "id": s.id,
                    "seek": 0,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "tokens": list(s.tokens),
                    "temperature": s.temperature,
                    "avg_logprob": s.avg_logprob,
                    "compression_ratio": s.compression_ratio,
                    "no_speech_prob": s.no_speech_prob,
                }
                for s in self.segments
            ]
        if words:
            body["words"] = [
                {"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
                for w in self.words
            ]
        return body

    @classmethod
    def from_verbose_json(cls, body: dict[str, Any]) -> Transcript:
        """Rebuild a transcript from a node's verbose_json (words are put in their segment)."""
        words = [
            Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w.get("probability", 1)))
            for w in body.get("words") or ()
        ]
        segments: list[Segment] = []
        for raw in body.get("segments") or ():
            start, end = float(raw["start"]), float(raw["end"])
            mine = tuple(w for w in words if start <= w.start < end or (w.start == end == start))
            segments.append(
                Segment(
                    id=int(raw.get("id", len(segments))),
                    start=start,
                    end=end,
                    text=str(raw.get("text", "")),
                    words=mine,
                    tokens=tuple(int(t) for t in raw.get("tokens") or ()),
                    temperature=float(raw.get("temperature") or 0.0),
                    avg_logprob=float(raw.get("avg_logprob") or 0.0),
                    compression_ratio=float(raw.get("compression_ratio") or 0.0),
                    no_speech_prob=float(raw.get("no_speech_prob") or 0.0),
                )
            )
        placed = sum(len(s.words) for s in segments)
        if placed != len(words):  # timings outside every segment: keep them, in one segment
            duration = float(body.get("duration") or 0.0)
            text = str(body.get("text", ""))
            segments = [Segment(0, 0.0, duration, text, tuple(words))]
        return cls(
            text=str(body.get("text", "")),
            language=_language_code(str(body.get("language", ""))),
            duration=float(body.get("duration") or 0.0),
            segments=tuple(segments),
        )


def _language_code(name: str) -> str:
    for code, full in _LANGUAGE_NAMES.items():
        if name == full:
            return code
    return name


@dataclass(frozen=True, slots=True)
class TranscribeOptions:
    """Per-request options (OpenAI's fields): language code, prompt, temperature, word timings."""

    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None  # None or 0: the engine's configured temperature(s)
    word_timestamps: bool = False


_DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True, slots=True)
class SpeechEngineConfig:
    """A speech node's `options`: model (path or name), device, compute type, decoding knobs."""

    model: str = "small"
    device: str = "auto"  # auto | cuda | cpu
    compute_type: str = "auto"  # auto: float16 on CUDA, int8 on CPU
    workers: int = 1  # transcriptions that run at once (faster-whisper num_workers)
    cpu_threads: int = 0  # per worker; 0: CTranslate2's default
    vad: bool = False  # Silero VAD: skip silence before decoding
    beam_size: int = 5
    max_new_tokens: int | None = None
    temperature: float | tuple[float, ...] = _DEFAULT_TEMPERATURES
    condition_on_previous_text: bool = True
    warmup: bool = False  # load the model at start (in the background) instead of on first use
    download_root: str | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SpeechEngineConfig:
        """Validate a node's `options` mapping; ValueError names an unknown or bad key."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in options.items():
            if key not in known:
                raise ValueError(f"speech engine: unknown option {key!r}")
            values[key] = value
        if isinstance(values.get("temperature"), list):
            values["temperature"] = tuple(float(t) for t in values["temperature"])
        config = cls(**values)
        if config.device not in ("auto", "cuda", "cpu"):
            raise ValueError(
                f"speech engine: device must be auto, cuda or cpu, not {config.device!r}"
            )
        for name in ("workers", "beam_size"):
            if not isinstance(getattr(config, name), int) or getattr(config, name) < 1:
                raise ValueError(f"speech engine: {name} must be a positive integer")
        if not isinstance(config.model, str) or not config.model:
            raise ValueError("speech engine: model must be a path or a model name")
        return config

    def resolved_model(self) -> str:
        """A local folder as an absolute path, anything else as the model name it is."""
        path = Path(self.model).expanduser()
        return str(path.resolve()) if path.exists() else self.model

    def resolved_compute_type(self, device: str) -> str:
        if self.compute_type != "auto":
            return self.compute_type
        return "float16" if device == "cuda" else "int8"


class SpeechEngine(SlotEngine):
    """faster-whisper in this process; `transcribe` is safe to call from many requests."""

    def __init__(self, config: SpeechEngineConfig, name: str = "speech") -> None:
        self.config = config
        self.name = name
        super().__init__("speech", config.model, config.workers, f"whisper-{name}")

    def _build(self) -> Any:
        import ctranslate2
        from faster_whisper import WhisperModel

        cfg = self.config
        device = cfg.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        return WhisperModel(
            cfg.resolved_model(),
            device=device,
            compute_type=cfg.resolved_compute_type(device),
            cpu_threads=cfg.cpu_threads,
            num_workers=cfg.workers,
            download_root=cfg.download_root,
        )

    def _unavailable(self, detail: str) -> ModelUnavailable:
        return ModelUnavailable(
            f"speech model {self.config.model!r} could not be loaded ({detail}). Set the node's"
            " options.model, or MEGACITY_SPEECH_MODEL, to a local CTranslate2 Whisper folder"
            " or to a model name this machine can download (e.g. large-v3, small).",
            retry_after_s=int(FAILED_LOAD_RETRY_S),
        )

    async def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        """Transcribe 16 kHz mono float32 samples in a worker thread."""
        return await self._in_line(lambda model: self._transcribe(model, audio, options))

    def _transcribe(self, model: Any, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        cfg = self.config
        temperature = options.temperature if options.temperature else cfg.temperature
        segments_iter, info = model.transcribe(
            audio,
            language=options.language,
            initial_prompt=options.prompt or None,
            temperature=list(temperature) if isinstance(temperature, tuple) else temperature,
            beam_size=cfg.beam_size,
            max_new_tokens=cfg.max_new_tokens,
            condition_on_previous_text=cfg.condition_on_previous_text,
            word_timestamps=options.word_timestamps,
            vad_filter=cfg.vad,
        )
        duration = float(audio.size) / SAMPLE_RATE
        segments = tuple(_segment(i, s, duration) for i, s in enumerate(segments_iter))
        text = "".join(s.text for s in segments).strip()
        return Transcript(text, str(info.language), round(duration, 3), segments)


def _clamp(value: float, duration: float) -> float:
    # Whisper can place a timestamp past the end of a short clip; report what is possible.
    return round(min(max(float(value), 0.0), duration), 3)


def _segment(index: int, raw: Any, duration: float) -> Segment:
    start = _clamp(raw.start, duration)
    end = max(start, _clamp(raw.end, duration))
    words = []
    for w in raw.words or ():
        ws = _clamp(w.start, duration)
        words.append(Word(str(w.word), ws, max(ws, _clamp(w.end, duration)), _prob(w.probability)))
    return Segment(
        id=index,
        start=start,
        end=end,
        text=str(raw.text),
        words=tuple(words),
        tokens=tuple(int(t) for t in raw.tokens),
        temperature=float(raw.temperature or 0.0),
        avg_logprob=float(raw.avg_logprob),
        compression_ratio=float(raw.compression_ratio),
        no_speech_prob=float(raw.no_speech_prob),
    )


def _prob(value: float) -> float:
    return round(min(max(float(value), 0.0), 1.0), 4)


__all__ = [
    "ModelUnavailable",
    "Segment",
    "SpeechEngine",
    "SpeechEngineConfig",
    "TranscribeOptions",
    "Transcript",
    "Word",
]

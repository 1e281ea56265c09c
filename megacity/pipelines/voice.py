"""K-Zone voice practice: a learner's recording → Whisper word timings → pronunciation scores.

`analyze` transcribes through the speech route and scores what was heard against the
reference text; `score` does the scoring alone for a transcript (and word timings) the
client already has. The scores are `megacity.scoring.pronunciation.assess`'s, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from megacity.engines.speech import TranscribeOptions, Transcript, Word
from megacity.engines.speech_http import AudioUpload
from megacity.errors import BadRequest
from megacity.routing.context import RequestContext
from megacity.routing.speech import SpeechAnswer, SpeechGateway
from megacity.scoring import textnorm
from megacity.scoring.pronunciation import (
    MAX_TEXT_CHARS,
    MAX_WORDS,
    MODES,
    RecognizedWord,
    assess,
)

LANGUAGES = ("ko", "en", "ja", "zh")


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the learner was asked to say, in which language and practice mode."""

    reference_text: str
    language: str
    mode: str = "read"

    def check(self) -> None:
        """400 for a bad language, mode or reference text, before any audio is decoded."""
        if self.language not in LANGUAGES:
            raise BadRequest(
                f"language must be one of {', '.join(LANGUAGES)}",
                code="unsupported_language",
                param="language",
            )
        if self.mode not in MODES:
            raise BadRequest(
                f"mode must be one of {', '.join(MODES)}", code="invalid_mode", param="mode"
            )
        if len(self.reference_text) > MAX_TEXT_CHARS:
            raise BadRequest(
                f"reference_text is longer than {MAX_TEXT_CHARS} characters",
                code="invalid_reference",
                param="reference_text",
            )
        if not textnorm.reference_words(self.reference_text, self.language):
            raise BadRequest(
                "reference_text has no words to score",
                code="invalid_reference",
                param="reference_text",
            )


def score(
    attempt: Attempt, transcript: str, words: Sequence[RecognizedWord] | None
) -> dict[str, Any]:
    """The assessment as JSON-ready data, with the transcription it was made from."""
    attempt.check()
    try:
        result = assess(attempt.reference_text, transcript, attempt.language, attempt.mode, words)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_attempt") from None
    return {"transcription": {"text": transcript, "language": attempt.language}, **result.to_dict()}


def recognized_words(words: Sequence[Word]) -> list[RecognizedWord]:
    """Whisper's words as the scorer takes them, cut to the scorer's input limits."""
    out: list[RecognizedWord] = []
    chars = 0
    for w in words[:MAX_WORDS]:
        chars += len(w.word)
        if chars > MAX_TEXT_CHARS:
            break  # a recording far longer than its reference: the tail cannot score anyway
        out.append(RecognizedWord(w.word, w.start, w.end, w.probability))
    return out


class VoiceAnalyzer:
    """Transcribes an attempt through the speech route and scores it."""

    def __init__(self, speech: SpeechGateway) -> None:
        self._speech = speech

    async def analyze(
        self,
        ctx: RequestContext,
        attempt: Attempt,
        upload: AudioUpload,
        started: float,
        model: str | None = None,
    ) -> tuple[dict[str, Any], SpeechAnswer]:
        """Scores and per-word detail for a recording, plus where it was transcribed."""
        attempt.check()
        decision = self._speech.decide(ctx, model)
        options = TranscribeOptions(language=attempt.language, word_timestamps=True)
        answer = await self._speech.transcribe(ctx, decision, upload, options, started)
        return _analysis(attempt, answer.transcript), answer


def _analysis(attempt: Attempt, transcript: Transcript) -> dict[str, Any]:
    words = recognized_words(transcript.words)
    text = "".join(w.word for w in words).strip() if words else transcript.text[:MAX_TEXT_CHARS]
    result = score(attempt, text, words or None)
    result["transcription"] = {
        "text": transcript.text,
        "language": transcript.language,
        "duration": transcript.duration,
    }
    return result

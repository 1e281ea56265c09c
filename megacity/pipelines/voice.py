"""K-Zone voice practice: a learner's recording → Whisper word timings → pronunciation scores.

`analyze` transcribes through the speech route and scores what was heard against the
reference text; `score` does the scoring alone for a transcript (and word timings) the
client already has. The scores are `megacity.scoring.pronunciation.assess`'s.

With a voice reference (`reference_id`: a recording of the song or line, see
`voice_references`), a sing-along or shadowing attempt is also scored on its prosody:
pitch and rhythm, or intonation, pauses and pace (`voice_prosody`); the `prosody` score
then counts in `overall` with the mode's weights.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from megacity.engines.speech import TranscribeOptions, Transcript, Word
from megacity.engines.speech_http import AudioUpload
from megacity.errors import BadRequest
from megacity.routing.context import RequestContext
from megacity.routing.speech import SpeechAnswer, SpeechGateway
from megacity.scoring import textnorm
from megacity.scoring.languages import LANGUAGES
from megacity.scoring.pronunciation import (
    MAX_TEXT_CHARS,
    MAX_WORDS,
    MODES,
    RecognizedWord,
    assess,
)

if TYPE_CHECKING:
    from megacity.pipelines.voice_prosody import StoredVoice
    from megacity.pipelines.voice_references import VoiceReferences


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
    attempt: Attempt,
    transcript: str,
    words: Sequence[RecognizedWord] | None,
    prosody: float | None = None,
) -> dict[str, Any]:
    """The assessment as JSON-ready data, with the transcription it was made from."""
    attempt.check()
    try:
        result = assess(
            attempt.reference_text,
            transcript,
            attempt.language,
            attempt.mode,
            words,
            prosody=prosody,
        )
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_attempt") from None
    return {"transcription": {"text": transcript, "language": attempt.language}, **result.to_dict()}


def with_reference(attempt: Attempt, reference: StoredVoice) -> Attempt:
    """The attempt's empty fields taken from its voice reference; 400 when one contradicts it."""
    checks = (
        ("language", attempt.language, reference.language, "reference_language_mismatch"),
        ("mode", attempt.mode, reference.mode, "reference_mode_mismatch"),
    )
    for name, given, stored, code in checks:
        if given and given != stored:
            raise BadRequest(f"the reference is {name} {stored!r}, the attempt {given!r}",
                             code=code, param=name)  # fmt: skip
    if attempt.reference_text and " ".join(attempt.reference_text.split()) != " ".join(reference.text.split()):  # fmt: skip
        raise BadRequest("reference_text differs from the voice reference's text (leave it out)",
                         code="reference_text_mismatch", param="reference_text")  # fmt: skip
    return dataclasses.replace(attempt, reference_text=reference.text, language=reference.language,
                               mode=reference.mode)  # fmt: skip


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
    """Transcribes an attempt through the speech route and scores it (with its prosody when
    a voice reference is given)."""

    def __init__(
        self,
        speech: SpeechGateway,
        references: VoiceReferences | None = None,
        *,
        max_audio_s: float = 600.0,
    ) -> None:
        self._speech = speech
        self._references = references
        self._max_audio_s = max_audio_s

    async def analyze(
        self,
        ctx: RequestContext,
        attempt: Attempt,
        upload: AudioUpload,
        started: float,
        model: str | None = None,
        reference_id: str | None = None,
        forgive_octave: bool = True,
    ) -> tuple[dict[str, Any], SpeechAnswer]:
        """Scores and per-word detail for a recording, plus where it was transcribed."""
        if reference_id is not None:
            return await self._against(ctx, attempt, upload, started, model, reference_id, forgive_octave)  # fmt: skip
        attempt.check()
        decision = self._speech.decide(ctx, model)
        options = TranscribeOptions(language=attempt.language, word_timestamps=True)
        answer = await self._speech.transcribe(ctx, decision, upload, options, started)
        return _analysis(attempt, answer.transcript), answer

    async def _against(
        self,
        ctx: RequestContext,
        attempt: Attempt,
        upload: AudioUpload,
        started: float,
        model: str | None,
        reference_id: str,
        forgive_octave: bool,
    ) -> tuple[dict[str, Any], SpeechAnswer]:
        from megacity.pipelines.voice_prosody import heard_and_pitch, score_prosody  # audio, F0

        if self._references is None:
            raise RuntimeError("voice references are not configured")
        reference = await asyncio.to_thread(self._references.load, reference_id)
        attempt = with_reference(attempt, reference)
        attempt.check()
        decision = self._speech.decide(ctx, model)
        options = TranscribeOptions(language=attempt.language, word_timestamps=True)
        answer, track = await heard_and_pitch(
            self._speech, ctx, decision, upload, options, started,
            mode=reference.mode, max_seconds=self._max_audio_s, who="recording",
        )  # fmt: skip
        prosody, detail = await asyncio.to_thread(score_prosody, track, reference, forgive_octave)
        result = _analysis(attempt, answer.transcript, prosody)
        result["reference_id"] = reference.reference_id
        result["prosody"] = detail
        return result, answer


def _analysis(
    attempt: Attempt, transcript: Transcript, prosody: float | None = None
) -> dict[str, Any]:
    words = recognized_words(transcript.words)
    text = "".join(w.word for w in words).strip() if words else transcript.text[:MAX_TEXT_CHARS]
    result = score(attempt, text, words or None, prosody)
    result["transcription"] = {
        "text": transcript.text,
        "language": transcript.language,
        "duration": transcript.duration,
    }
    return result

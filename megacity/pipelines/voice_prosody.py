"""Prosody in the K-Zone voice practice: the pitch of a recording, the word timings and
lyric lines of a reference, and the sing-along or shadowing scores of an attempt.

F0 is extracted here, in the router's worker threads (``engines.pitch``: ≈ 12 ms per
second of audio), from the same upload the speech route transcribes; the scores come
from the pure ``scoring.pitch`` (sing-along) and ``scoring.prosody`` (shadowing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from megacity.engines.audio import SAMPLE_RATE, decode_audio
from megacity.engines.pitch import extract_pitch
from megacity.engines.speech import TranscribeOptions
from megacity.engines.speech_http import AudioUpload
from megacity.errors import UnprocessableEntity
from megacity.routing.context import RequestContext
from megacity.routing.selector import Decision
from megacity.routing.speech import SpeechAnswer, SpeechGateway
from megacity.scoring import textnorm
from megacity.scoring.contour import PitchTrack, TimedWord, jsonable, median_hz
from megacity.scoring.pitch import Phrase, SingingConfig, score_singing
from megacity.scoring.pronunciation import RecognizedWord, assess
from megacity.scoring.prosody import compare_intonation

MIN_VOICED_S = 0.3  # a reference (or attempt) with less voice than this has no melody to follow


@dataclass(frozen=True)
class StoredVoice:
    """A voice reference as the analyses use it: its row's facts, contour, words, lines."""

    reference_id: str
    title: str
    language: str
    mode: str
    text: str
    track: PitchTrack
    words: tuple[TimedWord, ...]
    phrases: tuple[Phrase, ...]


def voice_of(mode: str) -> str:
    """The pitch range to track: singing reaches higher than speech."""
    return "singing" if mode == "singalong" else "speech"


def pitch_of(data: bytes, mode: str, max_seconds: float, who: str) -> PitchTrack:
    """Decode an upload and track its pitch; 422 ``no_voiced_frames`` when nothing is voiced."""
    samples = decode_audio(data, max_seconds=max_seconds)
    track = extract_pitch(samples, SAMPLE_RATE, voice=voice_of(mode))  # type: ignore[arg-type]
    if track.voiced_s < MIN_VOICED_S:
        raise UnprocessableEntity(
            f"the {who} has {track.voiced_s:.2f} s of voiced sound (at least {MIN_VOICED_S} s"
            " needed): silence, noise or whispering has no pitch to compare",
            code="no_voiced_frames",
            param="file",
        )
    return track


async def heard_and_pitch(
    speech: SpeechGateway,
    ctx: RequestContext,
    decision: Decision,
    upload: AudioUpload,
    options: TranscribeOptions,
    started: float,
    *,
    mode: str,
    max_seconds: float,
    who: str,
) -> tuple[SpeechAnswer, PitchTrack]:
    """Transcribe through the speech route while the pitch is tracked in a worker thread."""
    pitch = asyncio.create_task(asyncio.to_thread(pitch_of, upload.data, mode, max_seconds, who))
    try:
        answer = await speech.transcribe(ctx, decision, upload, options, started)
    except BaseException:
        pitch.cancel()
        raise
    return answer, await pitch


def reference_timings(
    text: str, language: str, mode: str, heard: Sequence[RecognizedWord]
) -> tuple[list[TimedWord], list[Phrase]]:
    """The reference text's words with the times they were heard (Whisper's words aligned
    with the text), and its lines (lyrics, script) as phrases when it has several."""
    if not heard:
        return [], []
    result = assess(text, "", language, mode, heard)
    spans = [(w.reference, w.start, w.end) for w in result.words if w.reference is not None]
    words = [TimedWord(t, s, e) for t, s, e in spans if s is not None and e is not None]
    phrases: list[Phrase] = []
    first = 0
    for line in (part.strip() for part in text.splitlines()):
        count = len(textnorm.reference_words(line, language)) if line else 0
        times = [
            (s, e) for _, s, e in spans[first : first + count] if s is not None and e is not None
        ]
        first += count
        if times:
            phrases.append(Phrase(times[0][0], times[-1][1], line))
    return words, phrases if len(phrases) > 1 else []


def describe_reference(track: PitchTrack) -> dict[str, float]:
    """A reference's pitch facts for its record."""
    return {
        "duration_s": round(float(track.times[-1] - track.times[0]) + track.hop_s, 3),
        "voiced_s": round(track.voiced_s, 3),
        "median_f0_hz": round(median_hz(track), 1),
    }


def score_prosody(
    attempt: PitchTrack, reference: StoredVoice, forgive_octave: bool
) -> tuple[float, dict[str, Any]]:
    """The prosody score 0–100 of an attempt against its reference, and its detail as JSON."""
    if reference.mode == "singalong":
        sung = score_singing(
            attempt, reference.track, reference.phrases or None, SingingConfig(forgive_octave)
        )
        return sung.score, {"mode": "singalong", "forgive_octave": forgive_octave, **sung.to_dict()}
    said = compare_intonation(attempt, reference.track, reference.words)
    detail = {
        "mode": "shadowing",
        "score": said.score,
        "intonation": {
            "score": said.intonation,
            "contour_correlation": said.contour_correlation,
            "final_direction": said.final_direction,
            "reference_final_direction": said.reference_final_direction,
            "difference": said.difference,
        },
        "pauses": {
            "score": said.pauses,
            "reference": len(said.reference_pauses),
            "attempt": len(said.attempt_pauses),
            "missing": said.missing_pauses,
            "extra": said.extra_pauses,
        },
        "rate": {"score": said.rate, "ratio": said.rate_ratio},
        "feedback": said.feedback,
    }
    return said.score, jsonable(detail)

"""Speech: the transcript with word timings and, against a script, pronunciation per word.

The audio is the `audio` upload or the video's own sound track (the speech route decodes
either). With a `script` the words are scored by `scoring.pronunciation.assess` through
the K-Zone voice pipeline (the same scores `/api/v1/kzone/voice/analyze` gives).
"""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel

from megacity.engines.speech import TranscribeOptions
from megacity.pipelines.multimodal.extractors.base import Extractor, Job, Unavailable
from megacity.pipelines.multimodal.findings import Anchor, Findings, Point, clock
from megacity.pipelines.multimodal.request import TutorRequest
from megacity.pipelines.voice import Attempt, recognized_words, score

MAX_WORDS = 300  # words kept in the features (a long clip's transcript stays readable)


class HeardWord(BaseModel):
    word: str
    start_s: float
    end_s: float
    probability: float


class ScriptWord(BaseModel):
    """One word of the script as the learner said it (or an inserted word, reference None)."""

    reference: str | None
    recognized: str | None
    error: str  # none, mispronunciation, omission, insertion
    accuracy: float
    start_s: float | None = None
    end_s: float | None = None
    pause_before_s: float | None = None
    unexpected_break: bool = False


class Pronunciation(BaseModel):
    """The scores 0–100 of the voice assessment (fluency None without word timings)."""

    overall: float
    accuracy: float
    completeness: float
    fluency: float | None
    wer: float
    words: list[ScriptWord]


class SpeechFeatures(BaseModel):
    transcript: str
    language: str
    duration_s: float
    words: list[HeardWord]
    words_per_minute: float | None
    longest_pause_s: float | None
    pronunciation: Pronunciation | None


class SpeechExtractor(Extractor):
    name = "speech"
    features = SpeechFeatures

    def applies(self, request: TutorRequest) -> bool:
        return request.audio is not None or request.video is not None

    async def extract(self, job: Job) -> SpeechFeatures:
        request = job.request
        media = request.audio or request.video
        assert media is not None
        speech = self.tools.speech
        decision = speech.decide(job.ctx, None)
        language = request.spoken_language()
        options = TranscribeOptions(language=language, word_timestamps=True)
        answer = await speech.transcribe(job.ctx, decision, media.upload, options, job.started)
        transcript = answer.transcript
        heard = recognized_words(transcript.words)
        if not transcript.text.strip() and not heard:
            raise Unavailable("no_speech", "nothing was said in the recording")
        pronunciation = None
        if request.script:
            text = "".join(w.word for w in heard).strip() or transcript.text
            result = score(Attempt(request.script, language), text, heard or None)
            pronunciation = _pronunciation(result)
        return SpeechFeatures(
            transcript=transcript.text.strip(),
            language=transcript.language,
            duration_s=round(transcript.duration, 3),
            words=[
                HeardWord(
                    word=w.word.strip(),
                    start_s=round(w.start, 3),
                    end_s=round(w.end, 3),
                    probability=round(w.probability, 3),
                )
                for w in heard[:MAX_WORDS]
            ],
            words_per_minute=_rate(heard),
            longest_pause_s=_longest_pause(heard),
            pronunciation=pronunciation,
        )

    def findings(self, features: SpeechFeatures) -> Findings:
        p = features.pronunciation
        scores: dict[str, Any] = {}
        if features.words_per_minute is not None:
            scores["words_per_minute"] = round(features.words_per_minute, 1)
        if p is None:
            said = Point(
                f'You said: "{features.transcript[:200]}".',
                f'이렇게 들렸어요: "{features.transcript[:200]}"',
                weight=0.5,
            )
            return Findings(scores=scores, summary=(said,))
        scores["pronunciation"] = {
            "overall": p.overall,
            "accuracy": p.accuracy,
            "completeness": p.completeness,
            "fluency": p.fluency,
        }
        good = [w for w in p.words if w.reference and w.error == "none" and w.accuracy >= 90]
        bad = sorted(
            (w for w in p.words if w.reference and (w.error != "none" or w.accuracy < 70)),
            key=lambda w: w.accuracy,
        )
        summary = Point(
            f"Line accuracy {p.overall:.0f}/100 (pronunciation {p.accuracy:.0f}, completeness"
            f" {p.completeness:.0f}).",
            f"대사 정확도 {p.overall:.0f}점이에요 (발음 {p.accuracy:.0f}, 완성도 {p.completeness:.0f}).",
            weight=3.0,
        )
        strengths = []
        if good:
            words = ", ".join(w.reference or "" for w in good[:4])
            strengths.append(
                Point(f"Clear words: {words}.", f"또렷하게 말한 단어: {words}.", weight=len(good))
            )
        fixes = [_fix(w) for w in bad[:4]]
        breaks = [w for w in p.words if w.unexpected_break and w.reference]
        if breaks:
            w = breaks[0]
            fixes.append(
                Point(
                    f'Keep the line flowing before "{w.reference}" — there was a pause'
                    f"{_at(w.start_s)}.",
                    f'"{w.reference}" 앞에서 끊기지 않게 이어서 말해 보세요{_at_ko(w.start_s)}.',
                    Anchor(time_s=w.start_s, word=w.reference),
                    weight=1.5,
                )
            )
        exercise_words = " ".join(w.reference or "" for w in bad[:3]) or " ".join(
            w.reference or "" for w in p.words[:3] if w.reference
        )
        exercise = Point(
            f'Say "{exercise_words}" slowly three times, then the whole line at normal speed.',
            f'"{exercise_words}" 부분을 천천히 세 번 말한 뒤, 대사 전체를 보통 속도로 해 보세요.',
            weight=2.0,
        )
        return Findings(
            scores=scores,
            summary=(summary,),
            strengths=tuple(strengths),
            fixes=tuple(fixes),
            exercises=(exercise,),
        )


def _fix(w: ScriptWord) -> Point:
    anchor = Anchor(time_s=w.start_s, end_s=w.end_s, word=w.reference)
    if w.error == "omission":
        return Point(
            f'"{w.reference}" was missing{_at(w.start_s)}.',
            f'"{w.reference}" 단어가 빠졌어요{_at_ko(w.start_s)}.',
            anchor,
            weight=3.0,
        )
    heard = f' (heard "{w.recognized}")' if w.recognized else ""
    heard_ko = f' ("{w.recognized}"로 들렸어요)' if w.recognized else ""
    return Point(
        f'Pronounce "{w.reference}" more clearly{_at(w.start_s)}{heard}.',
        f'"{w.reference}" 발음을 더 또렷하게 해 보세요{_at_ko(w.start_s)}{heard_ko}.',
        anchor,
        weight=2.0 + (100 - w.accuracy) / 100,
    )


def _at(t: float | None) -> str:
    return f" at {clock(t)}" if t is not None else ""


def _at_ko(t: float | None) -> str:
    return f" ({clock(t)})" if t is not None else ""


def _pronunciation(result: dict[str, Any]) -> Pronunciation:
    s = result["scores"]
    words = [
        ScriptWord(
            reference=w["reference"],
            recognized=w["recognized"],
            error=w["error_type"],
            accuracy=round(float(w["accuracy"]), 1),
            start_s=w.get("start"),
            end_s=w.get("end"),
            pause_before_s=w.get("pause_before"),
            unexpected_break=bool(w.get("unexpected_break")),
        )
        for w in result["words"][:MAX_WORDS]
    ]
    return Pronunciation(
        overall=round(float(s["overall"]), 1),
        accuracy=round(float(s["accuracy"]), 1),
        completeness=round(float(s["completeness"]), 1),
        fluency=None if s["fluency"] is None else round(float(s["fluency"]), 1),
        wer=round(float(result["wer"]), 3),
        words=words,
    )


def _rate(words: list[Any]) -> float | None:
    if len(words) < 2:
        return None
    span = words[-1].end - words[0].start
    return round(len(words) * 60.0 / span, 1) if span > 0.5 else None


def _longest_pause(words: list[Any]) -> float | None:
    gaps = [b.start - a.end for a, b in itertools.pairwise(words)]
    return round(max(gaps), 3) if gaps else None

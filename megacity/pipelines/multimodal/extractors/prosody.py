"""Prosody: how a line was said — the pitch's movement in semitones around the speaker's
own median (so a child and an adult actor compare), whether the end of the line rises or
falls, pace and pauses — and, against a voice reference, how close that is to it.

F0 is Praat's tracker (`engines.pitch`) in a worker thread, on the same audio the speech
extractor hears (the `audio` upload or the video's sound); the figures come from the pure
`scoring.prosody` and, against a reference, from the same scoring as
`/api/v1/kzone/voice/analyze` with a `reference_id` (shadowing: intonation, pauses, pace;
a sing-along reference: pitch and rhythm). Only these numbers are kept, never the audio.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from megacity.errors import MegaCityError, NotFound
from megacity.pipelines.multimodal.extractors.base import Extractor, Job, Unavailable
from megacity.pipelines.multimodal.findings import Anchor, Findings, Point, clock
from megacity.pipelines.multimodal.request import Scenario, TutorRequest

LONG_PAUSE_S = 1.0  # a pause inside a line this long is worth a word
FLAT_RANGE_ST = 2.0  # a line whose pitch moves less than this (10th–90th percentile) is flat
LIVELY_RANGE_ST = 5.0
FAST_SYLLABLES_PER_S, SLOW_SYLLABLES_PER_S = 7.0, 2.5
_DIRECTION_KO = {"rise": "올라가요", "fall": "내려가요", "level": "평평해요"}
_DIRECTION_EN = {"rise": "rises", "fall": "falls", "level": "stays level"}


class Pause(BaseModel):
    start_s: float
    end_s: float


class AgainstReference(BaseModel):
    """The attempt scored against a voice reference (its `detail` as the voice API gives it)."""

    reference_id: str
    title: str
    mode: str  # shadowing, or singalong
    score: float  # 0–100
    detail: dict[str, Any]


class ProsodyFeatures(BaseModel):
    duration_s: float
    speaking_s: float
    voiced_share: float
    median_f0_hz: float | None
    range_semitones: float | None  # 10th to 90th percentile, around the speaker's median
    final_direction: str | None  # rise, fall, level
    final_change_semitones: float | None
    syllables_per_s: float | None
    pauses: list[Pause]
    reference: AgainstReference | None = None


class ProsodyExtractor(Extractor):
    name = "prosody"
    features = ProsodyFeatures

    def applies(self, request: TutorRequest) -> bool:
        return request.audio is not None or request.video is not None

    async def extract(self, job: Job) -> ProsodyFeatures:
        from megacity.pipelines.voice_prosody import pitch_of, score_prosody
        from megacity.scoring.prosody import describe_prosody

        request = job.request
        media = request.audio or request.video
        assert media is not None
        stored = await self._reference(job)
        mode = stored.mode if stored is not None else "shadowing"
        try:
            track = await asyncio.to_thread(
                pitch_of, media.upload.data, mode, self.tools.max_audio_s, "recording"
            )
        except MegaCityError as exc:  # no voiced sound, no sound track, undecodable audio
            raise Unavailable(exc.code or "no_voiced_speech", exc.message) from None
        said = describe_prosody(track, _syllables(request.script))
        features = ProsodyFeatures(
            duration_s=said.duration_s,
            speaking_s=said.speaking_s,
            voiced_share=said.voiced_share,
            median_f0_hz=said.median_f0_hz,
            range_semitones=said.range_semitones,
            final_direction=said.final_direction,
            final_change_semitones=said.final_change_semitones,
            syllables_per_s=said.syllables_per_s,
            pauses=[Pause(start_s=p.start_s, end_s=p.end_s) for p in said.pauses],
        )
        if stored is not None:
            score, detail = await asyncio.to_thread(score_prosody, track, stored, True)
            features.reference = AgainstReference(
                reference_id=stored.reference_id,
                title=stored.title,
                mode=stored.mode,
                score=score,
                detail=detail,
            )
        return features

    async def _reference(self, job: Job) -> Any:
        """The voice reference a drama line is performed against, if the request names one.

        In dance coaching `reference_id` is a dance; elsewhere it may be either, so a
        reference that is not a voice reference is simply not one to compare with.
        """
        voices = self.tools.voices
        rid = job.request.reference_id
        if voices is None or not rid or job.scenario is Scenario.DANCE_COACH:
            return None
        try:
            return await asyncio.to_thread(voices.load, rid)
        except NotFound:
            return None

    def findings(self, features: ProsodyFeatures) -> Findings:
        scores: dict[str, Any] = {}
        strengths: list[Point] = []
        fixes: list[Point] = []
        ref = features.reference
        if ref is not None:
            scores["prosody"] = round(ref.score, 1)
            for line in ref.detail.get("feedback", []):
                at = line.get("time_s")
                fixes.append(
                    Point(
                        line["en"], line["ko"], Anchor(time_s=at) if at is not None else None, 2.0
                    )
                )
            if ref.score >= 80:
                strengths.append(
                    Point(
                        f"Your reading follows the reference's melody closely ({ref.score:.0f}/100).",
                        f"기준 낭독의 억양을 잘 따라했어요 ({ref.score:.0f}/100).",
                        weight=1.5,
                    )
                )
        spread = features.range_semitones
        if spread is not None and spread < FLAT_RANGE_ST:
            fixes.append(
                Point(
                    f"Your voice stayed flat (it moved {spread:.1f} semitones): let the pitch"
                    " rise and fall with the meaning of the line.",
                    f"목소리가 단조로웠어요 ({spread:.1f}반음 움직였어요): 대사의 뜻에 따라 음높이를"
                    " 올리고 내려 보세요.",
                    weight=1.2,
                )
            )
        elif spread is not None and spread >= LIVELY_RANGE_ST:
            strengths.append(
                Point(
                    f"Your voice moved expressively ({spread:.1f} semitones of range).",
                    f"목소리에 표현력이 있었어요 (음역 {spread:.1f}반음).",
                )
            )
        for pause in features.pauses:
            if pause.end_s - pause.start_s >= LONG_PAUSE_S:
                fixes.append(
                    Point(
                        f"A {pause.end_s - pause.start_s:.1f} s pause at {clock(pause.start_s)}"
                        " breaks the line: keep it flowing.",
                        f"{clock(pause.start_s)}에 {pause.end_s - pause.start_s:.1f}초 멈춰서 대사가"
                        " 끊겼어요: 이어서 말해 보세요.",
                        Anchor(time_s=pause.start_s, end_s=pause.end_s),
                        weight=1.0,
                    )
                )
                break
        rate = features.syllables_per_s
        if rate is not None and rate > FAST_SYLLABLES_PER_S:
            fixes.append(
                Point(
                    f"Slow down a little ({rate:.1f} syllables a second).",
                    f"조금 천천히 말해 보세요 (초당 {rate:.1f}음절).",
                    weight=0.9,
                )
            )
        elif rate is not None and rate < SLOW_SYLLABLES_PER_S:
            fixes.append(
                Point(
                    f"Pick up the pace a little ({rate:.1f} syllables a second).",
                    f"조금 더 빠르게 말해 보세요 (초당 {rate:.1f}음절).",
                    weight=0.7,
                )
            )
        return Findings(
            scores=scores,
            summary=(_summary(features),),
            strengths=tuple(strengths),
            fixes=tuple(fixes),
        )


def _summary(f: ProsodyFeatures) -> Point:
    end = f.final_direction
    en = [f"Your voice sat around {f.median_f0_hz:.0f} Hz" if f.median_f0_hz else "Voice heard"]
    ko = [f"목소리 높이는 약 {f.median_f0_hz:.0f}Hz" if f.median_f0_hz else "목소리를 들었어요"]
    if f.range_semitones is not None:
        en.append(f"moving {f.range_semitones:.1f} semitones")
        ko.append(f"{f.range_semitones:.1f}반음 움직였고")
    if end is not None:
        en.append(f"and the line {_DIRECTION_EN[end]} at the end")
        ko.append(f"문장 끝에서 {_DIRECTION_KO[end]}")
    anchor = Anchor(time_s=max(0.0, f.duration_s - 1.0), end_s=f.duration_s) if end else None
    return Point(", ".join(en) + ".", ", ".join(ko) + ".", anchor, weight=0.8)


def _syllables(script: str | None) -> int | None:
    """Syllables of the line when its script tells them (Hangul and kana/kanji: one a
    character); otherwise the pitch tracker counts energy peaks."""
    if not script:
        return None
    count = sum(1 for c in script if "\uac00" <= c <= "\ud7a3" or "\u3040" <= c <= "\u9fff")
    return count or None

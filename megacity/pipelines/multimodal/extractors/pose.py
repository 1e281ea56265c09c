"""Pose: keypoints of the video (or of a photo, as a one-frame clip) and, against a stored
reference dance, the Dance Lab's scoring — score, body parts, timing, worst moments — with
its heatmap and overlay drawn on a plain background (no frame of the learner is stored).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from megacity.engines.upload import MediaUpload
from megacity.errors import NotFound
from megacity.pipelines.dance import AnalyzeOptions
from megacity.pipelines.multimodal.extractors.base import Extractor, Job, Unavailable
from megacity.pipelines.multimodal.findings import Anchor, Findings, Point, clock
from megacity.pipelines.multimodal.request import Scenario, TutorRequest
from megacity.scoring.dance_types import WorstMoment

MIN_COVERAGE = 0.2  # a person in fewer frames: no usable pose
VISIBLE = 0.5  # landmark visibility from which a body part counts as seen
MAX_TIMELINE = 60


class Dance(BaseModel):
    """The Dance Lab's analysis against a reference (scores 0–100; None: part not seen)."""

    reference_id: str
    score: float
    body_parts: dict[str, float | None]
    offset_ms: float | None  # None when timing means nothing (another dance, a still pose)
    tempo_ratio: float | None
    timing_reason: str | None = None  # why timing is None: another_dance, still_pose
    same_choreography: bool = True  # whether the attempt follows the reference at all
    match_confidence: float | None = None
    moves: dict[str, int] = {}  # moves rated perfect / good / ok / miss
    feedback: list[dict[str, Any]] = []  # the Dance Lab's own sentences (en, ko, time_s …)
    worst_moments: list[WorstMoment]
    timeline: list[dict[str, Any]]  # start_s, end_s, score, rating
    mirrored: bool
    overlay_url: str | None = None
    heatmap_url: str | None = None


class PoseFeatures(BaseModel):
    frames: int
    duration_s: float
    coverage: float  # share of frames with a person
    visible: dict[str, float]  # body part → share of frames where it was seen
    dance: Dance | None = None


class PoseExtractor(Extractor):
    name = "pose"
    features = PoseFeatures

    def applies(self, request: TutorRequest) -> bool:
        return request.video is not None or bool(request.images)

    async def extract(self, job: Job) -> PoseFeatures:
        request = job.request
        upload = await self._clip(request)
        pose = self.tools.pose
        decision = pose.decide(job.ctx)
        answer = await pose.extract(job.ctx, decision, upload, job.started)
        ext = answer.extraction
        if ext.coverage < MIN_COVERAGE:
            raise Unavailable(
                "no_person", f"a person is visible in {ext.coverage:.0%} of the frames"
            )
        dance = None
        if request.reference_id and request.video is not None:
            try:
                body = await self.tools.dance.analyze_keypoints(
                    job.ctx, ext.sequence(), request.reference_id, AnalyzeOptions(mirror="auto")
                )
                dance = _dance(request.reference_id, body)
            except NotFound:
                # Outside dance coaching the reference may be a voice reference (a drama
                # line's recording, for prosody): then there is no dance to score.
                if job.scenario is Scenario.DANCE_COACH:
                    raise
        return PoseFeatures(
            frames=ext.frames,
            duration_s=round(ext.duration_s, 3),
            coverage=round(ext.coverage, 3),
            visible=await asyncio.to_thread(_visible, ext.keypoints),
            dance=dance,
        )

    async def _clip(self, request: TutorRequest) -> MediaUpload:
        if request.video is not None:
            return request.video.upload
        from megacity.engines.frames import still_clip
        from megacity.engines.images import decode_rgb

        image, pixels = request.images[0].upload.data, self.tools.max_pixels
        clip = await asyncio.to_thread(lambda: still_clip(decode_rgb(image, max_pixels=pixels)))
        return MediaUpload(clip, "photo.avi", "video/x-msvideo")

    def findings(self, features: PoseFeatures) -> Findings:
        unseen = [p for p, share in features.visible.items() if share < 0.3]
        scores: dict[str, Any] = {"pose_coverage": features.coverage}
        strengths: list[Point] = []
        fixes: list[Point] = []
        if unseen:
            names = ", ".join(p.replace("_", " ") for p in unseen)
            fixes.append(
                Point(
                    f"Film your whole body: the camera hardly saw your {names}.",
                    f"몸 전체가 보이게 찍어 주세요: {names} 부분이 잘 보이지 않았어요.",
                    weight=1.0,
                )
            )
        d = features.dance
        if d is None:
            summary = Point(
                f"Your pose was tracked in {features.coverage:.0%} of {features.frames} frames.",
                f"{features.frames}개 프레임 중 {features.coverage:.0%}에서 자세를 확인했어요.",
                weight=1.0,
            )
            exercise = Point(
                "Record the move again next to a reference dance to get a score per body part.",
                "기준 안무와 함께 다시 찍으면 신체 부위별 점수를 받을 수 있어요.",
                weight=0.5,
            )
            return Findings(
                scores=scores, summary=(summary,), fixes=tuple(fixes), exercises=(exercise,)
            )
        scores["dance"] = d.score
        scores["body_parts"] = d.body_parts
        scores["timing"] = (
            {"offset_ms": d.offset_ms, "tempo_ratio": d.tempo_ratio}
            if d.offset_ms is not None
            else {"offset_ms": None, "tempo_ratio": None, "reason": d.timing_reason}
        )
        scores["moves"] = d.moves
        scores["same_choreography"] = d.same_choreography
        if not d.same_choreography:
            return _another_dance(d, scores, fixes)
        summary = Point(
            f"Dance score {d.score:.0f}/100 against the reference.",
            f"기준 안무 대비 점수는 {d.score:.0f}점이에요.",
            weight=3.0,
        )
        best = sorted(
            ((p, s) for p, s in d.body_parts.items() if s is not None and s >= 85),
            key=lambda ps: -(ps[1] or 0),
        )
        for part, part_score in best[:2]:
            strengths.append(
                Point(
                    f"Your {part.replace('_', ' ')} matched the reference well ({part_score:.0f}).",
                    f"{_part_ko(part)} 동작이 기준과 잘 맞았어요 ({part_score:.0f}점).",
                    Anchor(part=part),
                    weight=part_score / 50,
                )
            )
        for m in d.worst_moments[:3]:
            fixes.append(
                Point(
                    f"{m.en[:1].upper()}{m.en[1:]} at {clock(m.start_s)}.",
                    f"{clock(m.start_s)}에 {m.ko}",
                    Anchor(time_s=m.start_s, end_s=m.end_s, part=m.part),
                    weight=2.0 + (100 - m.score) / 50,
                )
            )
        if d.offset_ms is not None and abs(d.offset_ms) > 150:
            late = d.offset_ms > 0
            fixes.append(
                Point(
                    f"You were {abs(d.offset_ms):.0f} ms {'behind' if late else 'ahead of'} the music.",
                    f"음악보다 {abs(d.offset_ms):.0f}ms {'늦었어요' if late else '빨랐어요'}.",
                    weight=1.5,
                )
            )
        worst = d.worst_moments[0] if d.worst_moments else None
        exercise = (
            Point(
                f"Practise {clock(worst.start_s)}–{clock(worst.end_s)} at 0.75× speed, watching"
                f" your {worst.part.replace('_', ' ')} in a mirror, then at full speed.",
                f"{clock(worst.start_s)}–{clock(worst.end_s)} 구간을 0.75배속으로 거울을 보며 연습한 뒤"
                " 원래 속도로 해 보세요.",
                Anchor(time_s=worst.start_s, end_s=worst.end_s, part=worst.part),
                weight=2.0,
            )
            if worst
            else Point(
                "Run the whole routine once more at full speed, keeping every move this clean.",
                "지금처럼 깔끔하게 전체 안무를 한 번 더 원래 속도로 해 보세요.",
                weight=1.0,
            )
        )
        hints = {
            k: v for k, v in (("overlay_url", d.overlay_url), ("heatmap_url", d.heatmap_url)) if v
        }
        return Findings(
            scores=scores,
            summary=(summary,),
            strengths=tuple(strengths),
            fixes=tuple(fixes),
            exercises=(exercise,),
            hints=hints,
        )


def _another_dance(d: Dance, scores: dict[str, Any], fixes: list[Point]) -> Findings:
    """The attempt does not follow the reference: the Dance Lab's own words (start with the
    first counts), and no timing or per-moment advice, which would be about another dance."""
    said = [
        Point(
            str(f["en"]),
            str(f["ko"]),
            Anchor(time_s=f["time_s"]) if f.get("time_s") is not None else None,
            weight=3.0,
        )
        for f in d.feedback
    ]
    summary = (
        said[0]
        if said
        else Point(
            f"This does not look like the reference dance yet ({d.score:.0f}/100).",
            f"아직 기준 안무와 다르게 보여요 ({d.score:.0f}점).",
            weight=3.0,
        )
    )
    exercise = Point(
        "Learn the first 8 counts of the reference slowly, then dance them with the video.",
        "기준 안무의 처음 8카운트를 천천히 익힌 뒤 영상에 맞춰 춰 보세요.",
        Anchor(time_s=0.0),
        weight=2.0,
    )
    return Findings(
        scores=scores,
        summary=(summary,),
        fixes=(*said[1:], *fixes),
        exercises=(exercise,),
    )


_PARTS_KO = {
    "head": "머리",
    "torso": "상체",
    "left_arm": "왼팔",
    "right_arm": "오른팔",
    "left_leg": "왼다리",
    "right_leg": "오른다리",
}


def _part_ko(part: str) -> str:
    return _PARTS_KO.get(part, part)


def _dance(reference_id: str, body: dict[str, Any]) -> Dance:
    timing = body.get("timing") or {}
    match = body.get("match") or {}
    timeline = body.get("timeline") or []
    step = max(1, len(timeline) // MAX_TIMELINE + (len(timeline) % MAX_TIMELINE > 0))
    offset, tempo = timing.get("offset_ms"), timing.get("tempo_ratio")
    return Dance(
        reference_id=reference_id,
        score=float(body["score"]),
        body_parts=dict(body.get("body_parts") or {}),
        offset_ms=None if offset is None else float(offset),
        tempo_ratio=None if tempo is None else float(tempo),
        timing_reason=timing.get("reason"),
        same_choreography=bool(match.get("same_choreography", True)),
        match_confidence=match.get("confidence"),
        moves={k: int(v) for k, v in (body.get("moves") or {}).items()},
        feedback=[f for f in body.get("feedback") or [] if "en" in f and "ko" in f],
        worst_moments=[WorstMoment(**m) for m in body.get("worst_moments") or []],
        timeline=timeline[::step],
        mirrored=bool(body.get("mirrored")),
        overlay_url=body.get("overlay_url"),
        heatmap_url=body.get("heatmap_url"),
    )


def _visible(keypoints: Any) -> dict[str, float]:
    import numpy as np

    from megacity.scoring.pose import BODY_PARTS, PART_LANDMARKS

    vis = np.nan_to_num(np.asarray(keypoints)[:, :, 3], nan=0.0)
    return {
        part: round(float((vis[:, list(PART_LANDMARKS[part])].mean(axis=1) >= VISIBLE).mean()), 3)
        for part in BODY_PARTS
    }

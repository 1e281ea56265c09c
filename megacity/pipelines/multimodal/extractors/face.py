"""Face: expression over time — smile, brow raise, frown, jaw open, blinks — and head pose.

The face engine samples the video (or reads the photos); `scoring.expression` turns the
blendshapes into shares, peaks and time segments. Only these numbers are kept.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from megacity.pipelines.multimodal.extractors.base import Extractor, Job, Unavailable
from megacity.pipelines.multimodal.findings import Anchor, Findings, Point, clock
from megacity.pipelines.multimodal.request import TutorRequest
from megacity.scoring.expression import ExpressionSegment, ExpressionStat, HeadPose

_KO = {"smile": "미소", "brow_raise": "눈썹 올리기", "frown": "찡그림", "jaw_open": "입 벌리기"}


class FaceFeatures(BaseModel):
    """`scoring.expression.ExpressionSummary`, as the fused document holds it."""

    frames: int
    face_frames: int
    presence: float
    expressions: dict[str, ExpressionStat]
    segments: list[ExpressionSegment]
    head: HeadPose | None
    blinks_per_min: float | None
    expressiveness: float


class FaceExtractor(Extractor):
    name = "face"
    features = FaceFeatures

    def applies(self, request: TutorRequest) -> bool:
        return request.video is not None or bool(request.images)

    async def extract(self, job: Job) -> FaceFeatures:
        from megacity.scoring.expression import summarize

        face = self.tools.face
        decision = face.decide(job.ctx)
        request = job.request
        if request.video is not None:
            fps = self.tools.policy.face_fps
            answer = await face.video(
                job.ctx, decision, request.video.upload.data, job.started, fps=fps
            )
        else:
            pictures = await asyncio.to_thread(self._pictures, request)
            answer = await face.images(job.ctx, decision, pictures, job.started)
        track = answer.track
        if track.faces == 0:
            raise Unavailable("no_face", f"no face was found in {track.frames} frame(s)")
        summary = await asyncio.to_thread(
            summarize, track.times, track.blendshapes, track.names, track.matrices
        )
        return FaceFeatures.model_validate(summary.to_dict())

    def _pictures(self, request: TutorRequest) -> list[Any]:
        from megacity.engines.images import decode_rgb

        pixels = self.tools.max_pixels
        return [decode_rgb(m.upload.data, max_pixels=pixels) for m in request.images]

    def findings(self, features: FaceFeatures) -> Findings:
        smile = features.expressions.get("smile")
        scores: dict[str, Any] = {
            "face_presence": features.presence,
            "expressiveness": features.expressiveness,
        }
        if smile is not None:
            scores["smile_share"] = smile.share
        strengths: list[Point] = []
        fixes: list[Point] = []
        shown = [s for s in features.segments if s.expression in _KO]
        if shown:
            first = shown[0]
            strengths.append(
                Point(
                    f"Your face showed {first.expression.replace('_', ' ')} at"
                    f" {clock(first.start_s)}.",
                    f"{clock(first.start_s)}에 {_KO[first.expression]} 표정이 잘 드러났어요.",
                    Anchor(time_s=first.start_s, end_s=first.end_s),
                    weight=1.0 + first.peak,
                )
            )
        if features.expressiveness < 0.3 and features.frames > 1:
            fixes.append(
                Point(
                    "Let your face carry the line: your expression stayed mostly neutral.",
                    "표정으로도 대사를 표현해 보세요: 표정이 대부분 무표정이었어요.",
                    weight=1.5,
                )
            )
        if features.presence < 0.7 and features.frames > 1:
            fixes.append(
                Point(
                    f"Keep your face toward the camera (seen in {features.presence:.0%} of frames).",
                    f"얼굴이 카메라를 향하게 해 주세요 (프레임의 {features.presence:.0%}에서만 보였어요).",
                    weight=1.0,
                )
            )
        head = features.head
        if head is not None and abs(head.yaw) > 25:
            fixes.append(
                Point(
                    "Turn your head more toward the camera.",
                    "고개를 카메라 쪽으로 더 돌려 주세요.",
                    weight=0.8,
                )
            )
        summary = Point(
            f"Face seen in {features.presence:.0%} of frames; expressiveness"
            f" {features.expressiveness:.2f} (0–1).",
            f"얼굴이 프레임의 {features.presence:.0%}에서 보였고, 표정 풍부도는"
            f" {features.expressiveness:.2f}(0–1)예요.",
            weight=0.8,
        )
        return Findings(
            scores=scores, summary=(summary,), strengths=tuple(strengths), fixes=tuple(fixes)
        )

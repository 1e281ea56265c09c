"""Vision: the zone's vision-language model describes the photos (or a video's keyframes), as JSON.

The images are checked and re-encoded here (engines/images.py: no metadata, at most
`max_pixels`), so the node gets the router's own data URLs. The model is asked for a
JSON report (strategy ``vision``); a model that writes prose instead still helps: its
text becomes the description, marked ``structured: false``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from megacity.config.topology import Engine
from megacity.errors import BadRequest
from megacity.pipelines.multimodal.extractors.base import Extractor, Job, Unavailable
from megacity.pipelines.multimodal.findings import Findings, Point
from megacity.pipelines.multimodal.llm import complete, json_format, parse_json
from megacity.pipelines.multimodal.request import Scenario, TutorRequest
from megacity.routing.selector import Decision

MAX_DESCRIPTION = 1500
TASKS = {
    Scenario.DANCE_COACH: "Describe the dancer's pose in each picture: the position of the arms,"
    " legs, torso and head, the direction they face, and anything that hides part of the body.",
    Scenario.HOMEWORK: "Read the homework: copy the problem's text and any formulas exactly,"
    " describe diagrams, and list what the student wrote as their answer or working.",
    Scenario.DRAMA_COACH: "Describe the performer's posture, gestures and the scene.",
    Scenario.GENERAL: "Describe what the pictures show that matters for the learner's question.",
}


class VisionReport(BaseModel):
    """What the model is asked to answer."""

    description: str = Field(max_length=4000)
    objects: list[str] = Field(default_factory=list, max_length=50)
    text: str = Field(default="", max_length=4000)
    observations: list[str] = Field(default_factory=list, max_length=30)


class VisionFeatures(BaseModel):
    model: str
    images: int
    frame_times_s: list[float]  # for a video: when each keyframe was taken
    description: str
    objects: list[str]
    text: str
    observations: list[str]
    structured: bool  # the model's JSON was valid (else its text is the description)


class VisionExtractor(Extractor):
    name = "vision"
    features = VisionFeatures

    def applies(self, request: TutorRequest) -> bool:
        return bool(request.images) or request.video is not None

    async def extract(self, job: Job) -> VisionFeatures:
        decision = self._decide(job)
        urls, times = await asyncio.to_thread(self._pictures, job.request)
        locale = "ko" if job.request.locale == "ko" else "en"
        messages = self.tools.prompts.get("vision").render(
            {"task": TASKS[job.scenario], "question": job.request.text or "-"}, locale
        )
        content: list[dict[str, Any]] = [{"type": "text", "text": messages[1]["content"]}]
        content += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
        payload = {
            "model": decision.model.served_as,
            "messages": [messages[0], {"role": "user", "content": content}],
            "max_tokens": 400,
            "temperature": 0,
            "response_format": json_format("vision_report", VisionReport),
        }
        text, usage = await complete(self.tools.llm, job.ctx, decision, payload, job.started)
        if usage:
            job.usage.append(usage)
        report = parse_json(text, VisionReport)
        if report is None and not text.strip():
            raise Unavailable("empty_answer", "the vision model answered nothing")
        return VisionFeatures(
            model=decision.model.name,
            images=len(urls),
            frame_times_s=times,
            description=(report.description if report else text.strip())[:MAX_DESCRIPTION],
            objects=report.objects if report else [],
            text=report.text if report else "",
            observations=report.observations if report else [],
            structured=report is not None,
        )

    def _decide(self, job: Job) -> Decision:
        selector = self.tools.selector
        zone_id, zone = selector.zone(job.ctx)
        if Engine.VISION not in zone.engines:
            raise BadRequest(
                f"zone {zone_id!r} has no vision model (`engines.vision` in the topology)",
                code="no_vision_model",
                param="image",
                zone=zone_id,
            )
        return selector.select_engine(Engine.VISION, None, job.ctx)

    def _pictures(self, request: TutorRequest) -> tuple[list[str], list[float]]:
        from megacity.engines.images import encode_rgb, prepare_image

        pixels = self.tools.max_pixels
        if request.images:
            urls = [
                prepare_image(m.upload.data, max_pixels=pixels, param="image").data_url()
                for m in request.images
            ]
            return urls, []
        from megacity.engines.frames import keyframes

        assert request.video is not None
        policy = self.tools.policy
        shots = keyframes(
            request.video.upload.data, policy.keyframes, max_seconds=policy.max_video_s
        )
        return [encode_rgb(rgb, max_pixels=pixels).data_url() for _, rgb in shots], [
            round(t, 3) for t, _ in shots
        ]

    def findings(self, features: VisionFeatures) -> Findings:
        seen = Point(
            f"What the picture shows: {features.description[:300]}",
            f"사진에서 본 내용: {features.description[:300]}",
            weight=1.0,
        )
        summary = [seen]
        if features.text:
            summary.insert(
                0,
                Point(
                    f'Text read in the picture: "{features.text[:300]}".',
                    f'사진에서 읽은 글: "{features.text[:300]}"',
                    weight=1.5,
                ),
            )
        exercise = Point(
            "Explain each step of your answer aloud, then check it against the problem again.",
            "풀이의 각 단계를 소리 내어 설명한 뒤, 문제와 다시 비교해 보세요.",
            weight=0.5,
        )
        return Findings(summary=tuple(summary), exercises=(exercise,))

"""Voice feedback: the answer's summary spoken by the zone's TTS model, as a TTS job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from megacity.config.topology import Engine
from megacity.db.jobs import Priority
from megacity.engines.generation import SpeechRequest
from megacity.jobs import JobService
from megacity.pipelines.generation import TTS, job_payload
from megacity.routing.context import RequestContext
from megacity.routing.generation import GenerationGateway

VOICES = ("ko", "en", "ja", "zh")


class SpokenSummary:
    """Queues a low-priority TTS job for a summary; the result's `hints.voice` names it."""

    def __init__(
        self, generation: GenerationGateway, jobs: Callable[[], JobService], max_chars: int
    ) -> None:
        self._generation = generation
        self._jobs = jobs
        self._max_chars = max_chars

    async def __call__(self, ctx: RequestContext, text: str, locale: str) -> dict[str, Any]:
        decision = self._generation.decide(Engine.TTS, ctx, None)
        speech = SpeechRequest(
            text=text[: self._max_chars], voice=locale if locale in VOICES else None, format="mp3"
        )
        job, _ = await self._jobs().submit(
            TTS,
            job_payload(ctx, decision.model.name, speech),
            owner_id=ctx.user_id or "",
            priority=Priority.LOW,
        )
        return {"job_id": job.id, "status": job.status, "status_url": f"/api/v1/jobs/{job.id}"}

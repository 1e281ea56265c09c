"""Generation endpoints: OpenAI's images and speech (wait for the job), and the K-zone jobs (202).

Every generation runs as a durable job at low priority (``thumbnail`` or ``tts``, see
pipelines/generation.py), never inside the HTTP request. The platform's endpoints answer
202 with the job at once; the OpenAI-compatible ones submit the same job and wait up to
``generation_wait_s`` for it, so the official client works unchanged — past that they
answer 504 ``generation_pending`` with the job id, and the job goes on.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from megacity.api.context import read_json, routing_context, validate
from megacity.api.generation_schemas import (
    ImageGenerationBody,
    SpeechBody,
    ThumbnailBody,
    TTSBody,
    check_text_length,
)
from megacity.api.jobs import PREFIX as JOBS
from megacity.api.jobs import accepted, job_service, owner_of, submit
from megacity.api.safety import check_synthesis
from megacity.api.schemas import ERROR_RESPONSES
from megacity.api.services import Services
from megacity.config.topology import Engine
from megacity.errors import (
    BadRequest,
    MegaCityError,
    UpstreamError,
    UpstreamTimeout,
)
from megacity.routing.context import RequestContext

if TYPE_CHECKING:  # the engines, jobs and database load with the first generation request
    from megacity.db.models import Job
    from megacity.engines.generation import SpeechRequest

router = APIRouter(tags=["generation"])

# Job errors that are the service's, not the request's (anything else came from a 4xx).
_SERVICE_ERRORS = frozenset({"handler_error", "timeout", "bad_result", "unknown_kind"})
_POLL_S = (0.02, 0.05, 0.1, 0.2, 0.25)


@router.post(
    "/v1/images/generations",
    responses=ERROR_RESPONSES,
    summary="Generate images (OpenAI-compatible); waits for the thumbnail job",
)
async def images_generations(request: Request) -> Response:
    services, ctx = _begin(request, Engine.IMAGE)
    body = validate(ImageGenerationBody, await read_json(request, services.settings.max_body_bytes))
    job = await _submit_image(request, services, ctx, body)
    result = await _finished(request, services, job)
    images = result["images"]
    if body.response_format == "b64_json":
        blobs = await asyncio.gather(
            *(asyncio.to_thread(services.storage.get, item["key"]) for item in images)
        )
        data = [
            {"b64_json": base64.b64encode(b).decode(), "seed": i["seed"]}
            for b, i in zip(blobs, images, strict=True)
        ]
    else:
        data = [{"url": services.storage.signed_url(i["key"]), "seed": i["seed"]} for i in images]
    answer = {"created": int(time.time()), "data": data, "model": result["model"]}
    return _json(answer, _headers(request, job.id, result))


@router.post(
    "/v1/audio/speech",
    responses=ERROR_RESPONSES,
    summary="Text to speech (OpenAI-compatible): the audio; waits for the tts job",
)
async def audio_speech(request: Request) -> Response:
    services, ctx = _begin(request, Engine.TTS)
    body = validate(SpeechBody, await read_json(request, services.settings.max_body_bytes))
    job = await _submit_speech(request, services, ctx, body, body.speech_request(), "input")
    result = await _finished(request, services, job)
    audio = result["audio"]
    data = await asyncio.to_thread(services.storage.get, audio["key"])
    headers = {**_headers(request, job.id, result), "X-MegaCity-Engine": str(result["engine"])}
    return Response(data, media_type=audio["content_type"], headers=headers)


@router.post(
    "/api/v1/kzone/generate/thumbnail",
    status_code=202,
    responses=ERROR_RESPONSES,
    summary="Queue a thumbnail job (text to image); 202 with the job's status URL",
)
async def kzone_thumbnail(request: Request) -> Response:
    services, ctx = _begin(request, Engine.IMAGE)
    body = validate(ThumbnailBody, await read_json(request, services.settings.max_body_bytes))
    return accepted(await _submit_image(request, services, ctx, body))


@router.post(
    "/api/v1/kzone/tts",
    status_code=202,
    responses=ERROR_RESPONSES,
    summary="Queue a text-to-speech job; 202 with the job's status URL",
)
async def kzone_tts(request: Request) -> Response:
    services, ctx = _begin(request, Engine.TTS)
    body = validate(TTSBody, await read_json(request, services.settings.max_body_bytes))
    return accepted(
        await _submit_speech(request, services, ctx, body, body.speech_request(), "text")
    )


# The request bodies these handlers parse themselves, for the OpenAPI document (app.py).
REQUEST_BODIES: dict[str, type[BaseModel]] = {
    "/v1/images/generations": ImageGenerationBody,
    "/v1/audio/speech": SpeechBody,
    "/api/v1/kzone/generate/thumbnail": ThumbnailBody,
    "/api/v1/kzone/tts": TTSBody,
}


def _begin(request: Request, engine: Engine) -> tuple[Services, RequestContext]:
    request.scope["state"]["route"] = (engine.value, "", "", "")
    return request.app.state.services, routing_context(request)


async def _submit_image(
    request: Request,
    services: Services,
    ctx: RequestContext,
    body: ImageGenerationBody | ThumbnailBody,
) -> Job:
    image = body.image_request()
    text = f"{image.prompt}\n{image.negative_prompt or ''}"
    await check_synthesis(
        request,
        ctx,
        kind="face",
        text=text,
        identity_text=image.prompt,
        subject_id=body.subject_id,
        consent_id=body.consent_id,
    )
    # The prompt is stored with the job: PII in it (a name, a phone number) is masked first.
    image = replace(
        image,
        prompt=services.guard.masker.redact(image.prompt),
        negative_prompt=image.negative_prompt
        and services.guard.masker.redact(image.negative_prompt),
    )
    from megacity.pipelines.generation import THUMBNAIL, job_payload

    decision = services.generation.decide(Engine.IMAGE, ctx, body.model)
    request.scope["state"]["route"] = ("image", decision.model.name, "", decision.zone)
    payload = job_payload(ctx, decision.model.name, image)
    return await submit(request, THUMBNAIL, payload, priority="low")


async def _submit_speech(
    request: Request,
    services: Services,
    ctx: RequestContext,
    body: SpeechBody | TTSBody,
    speech: SpeechRequest,
    field: str,
) -> Job:
    check_text_length(speech.text, services.settings.tts_max_chars, field)
    await check_synthesis(
        request,
        ctx,
        kind="voice",
        text=speech.text,
        identity_text=" ".join(filter(None, (body.voice, getattr(body, "instructions", None)))),
        subject_id=body.subject_id,
        consent_id=body.consent_id,
    )
    from megacity.engines.tts import STYLES
    from megacity.pipelines.generation import TTS, job_payload

    model = body.model
    if speech.style not in STYLES:  # known here: refuse now rather than fail the job
        raise BadRequest(
            f"unknown style {speech.style!r}; use one of {', '.join(STYLES)}",
            code="unknown_style",
            param="style",
        )
    decision = services.generation.decide(Engine.TTS, ctx, model)
    request.scope["state"]["route"] = ("tts", decision.model.name, "", decision.zone)
    payload = job_payload(ctx, decision.model.name, speech)
    return await submit(request, TTS, payload, priority="low")


async def _finished(request: Request, services: Services, job: Job) -> dict[str, Any]:
    """Wait for the job to end; its result, or raise the error it ended with."""
    from megacity.db.jobs import JobStatus

    deadline = time.monotonic() + services.settings.generation_wait_s
    jobs, owner = job_service(request), owner_of(request)
    turn = 0
    while True:
        if job.status == JobStatus.SUCCEEDED:
            return dict(job.result or {})
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise _job_error(job)
        if time.monotonic() >= deadline:
            raise UpstreamTimeout(
                f"the {job.kind} job did not finish in {services.settings.generation_wait_s:g} s;"
                " it goes on: poll its status URL",
                code="generation_pending",
                job_id=job.id,
                status_url=f"{JOBS}/{job.id}",
            )
        await asyncio.sleep(_POLL_S[min(turn, len(_POLL_S) - 1)])
        turn += 1
        job = await jobs.get(job.id, owner) or job


def _job_error(job: Job) -> MegaCityError:
    from megacity.db.jobs import JobStatus

    error = job.error or {}
    code = str(error.get("code") or "generation_failed")
    message = str(error.get("message") or f"the {job.kind} job {job.status}")
    if job.status == JobStatus.CANCELLED:
        return UpstreamError(
            f"the {job.kind} job was cancelled", code="job_cancelled", job_id=job.id
        )
    if code in _SERVICE_ERRORS:
        return UpstreamError(
            f"the {job.kind} job failed: {message}", code="generation_failed", job_id=job.id
        )
    return BadRequest(message, code=code, job_id=job.id)


def _headers(request: Request, job_id: str, result: dict[str, Any]) -> dict[str, str]:
    """The job's routing headers; the node that made it labels the request (and its region)."""
    node = str(result.get("node", ""))
    engine, model, _, zone = request.scope["state"]["route"]
    request.scope["state"]["route"] = (engine, model, node, zone)
    return {
        "X-MegaCity-Job-Id": job_id,
        "X-MegaCity-Model": str(result.get("model", "")),
        "X-MegaCity-Node": node,
    }


def _json(body: dict[str, Any], headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)

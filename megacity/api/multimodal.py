"""POST /api/v1/ai/multimodal: the multimodal tutor (multipart in; JSON, SSE or a job out).

Form fields: ``text``, ``image`` (repeat it for several), ``video``, ``audio``,
``scenario`` (auto, dance_coach, drama_coach, homework, general), ``reference_id`` (a
dance reference), ``script`` (the line performed), ``language`` (what is spoken),
``level``, ``voice`` (also speak the summary), ``stream``. The answer's language is the
request's locale (X-Locale, else the zone's), or a ``locale`` field.

Short inputs answer inline — JSON, or SSE with ``stream=true`` — and a video longer than
``inline_max_video_s`` becomes a job (202) whose result is the same document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from megacity.api.context import read_body, routing_context, until_disconnect
from megacity.api.jobs import accepted, submit
from megacity.api.multipart import Form, UploadedFile, read_form
from megacity.api.safety import caller
from megacity.api.schemas import AUDIO_ERROR_RESPONSES
from megacity.api.services import Services
from megacity.api.transcription import FORM_OVERHEAD, upload_of
from megacity.config.topology import LOCALES
from megacity.errors import BadRequest, MegaCityError, PayloadTooLarge
from megacity.pipelines.multimodal import MULTIMODAL, Media, Scenario, TutorRequest
from megacity.pipelines.multimodal.events import Event

log = logging.getLogger("megacity.multimodal")
router = APIRouter(tags=["multimodal"])

PATH = "/api/v1/ai/multimodal"
_TRUE = ("1", "true", "yes", "on")
_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "maxLength": 4000},
        "image": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "video": {"type": "string", "format": "binary"},
        "audio": {"type": "string", "format": "binary"},
        "scenario": {"enum": [s.value for s in Scenario], "default": "auto"},
        "reference_id": {"type": "string"},
        "script": {"type": "string", "maxLength": 2000},
        "language": {"enum": ["ko", "en", "ja", "zh"]},
        "locale": {"enum": list(LOCALES)},
        "level": {"enum": ["beginner", "intermediate", "advanced"], "default": "intermediate"},
        "voice": {"type": "boolean", "default": False},
        "stream": {"type": "boolean", "default": False},
    },
}


@router.post(
    PATH,
    responses={**AUDIO_ERROR_RESPONSES, 202: {"description": "a job for a long video"}},
    summary="Multimodal tutor: voice, motion, face, vision and text → one structured feedback",
    openapi_extra={
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FORM}}}
    },
)
async def multimodal(request: Request) -> Response:
    services: Services = request.app.state.services
    state = request.scope["state"]
    state["route"] = ("multimodal", "", "", "")
    ctx = routing_context(request)
    call = caller(request, ctx)
    policy = services.settings.multimodal
    form = await _read(request, policy.max_upload_bytes)
    tutor_request = await _tutor_request(form, services, call.locale)
    call = dataclasses.replace(call, locale=tutor_request.locale)
    state["route"] = ("multimodal", tutor_request.scenario.value, "", call.zone)
    if await _too_long_for_inline(services, tutor_request):
        payload = await services.multimodal_jobs.payload(tutor_request, ctx)
        return accepted(await submit(request, MULTIMODAL, payload))
    run = await services.tutor.start(tutor_request, ctx, call, state["started"])
    state["route"] = ("multimodal", run.scenario, "", call.zone)
    headers = {"X-MegaCity-Scenario": run.scenario, "X-MegaCity-Zone": call.zone}
    if tutor_request.stream:
        headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return StreamingResponse(
            _sse(run.events()), media_type="text/event-stream", headers=headers
        )
    result = await until_disconnect(request, run.result())
    return Response(orjson.dumps(result), media_type="application/json", headers=headers)


async def _read(request: Request, limit: int) -> Form:
    """The multipart form; a text-only request may also come url-encoded."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        raw = await read_body(request, FORM_OVERHEAD)
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return Form(fields=fields)
    try:
        return await read_form(request, limit + FORM_OVERHEAD)
    except PayloadTooLarge:
        raise PayloadTooLarge(
            f"the upload is over the {limit / 1024 / 1024:g} MB limit",
            code="file_too_large",
            param="video",
        ) from None


async def _tutor_request(form: Form, services: Services, locale: str) -> TutorRequest:
    """The form as a checked TutorRequest (400 naming the field)."""
    settings = services.settings
    policy = settings.multimodal
    images = form.file_lists.get("image", [])
    if len(images) > policy.max_images:
        raise BadRequest(f"at most {policy.max_images} images", param="image")
    for file in images:
        _cap(file, settings.media_max_image_bytes, "image")
    scenario_text = (form.get("scenario") or "auto").strip().lower()
    try:
        scenario = Scenario(scenario_text)
    except ValueError:
        known = ", ".join(s.value for s in Scenario)
        raise BadRequest(
            f"scenario must be one of {known}", code="invalid_scenario", param="scenario"
        ) from None
    from megacity.pipelines.dance import check_reference_id  # the motion stack: first use

    reference = (form.get("reference_id") or "").strip() or None
    chosen_locale = (form.get("locale") or "").strip().lower() or locale
    if chosen_locale not in LOCALES:
        raise BadRequest(
            f"locale must be one of {', '.join(LOCALES)}", code="unsupported_locale", param="locale"
        )
    return TutorRequest(
        text=(form.get("text") or "").strip(),
        images=tuple(Media.of("image", upload_of(f, "image")) for f in images),
        video=_media(form, "video"),
        audio=_media(form, "audio"),
        scenario=scenario,
        reference_id=check_reference_id(reference) if reference else None,
        script=(form.get("script") or "").strip() or None,
        language=(form.get("language") or "").strip().lower() or None,
        locale=chosen_locale,
        level=(form.get("level") or "intermediate").strip().lower(),
        voice=(form.get("voice") or "").strip().lower() in _TRUE,
        stream=(form.get("stream") or "").strip().lower() in _TRUE,
    ).check()


def _media(form: Form, name: str) -> Media | None:
    file = form.files.get(name)
    if file is None:
        return None
    if not file.data:
        raise BadRequest(f"the {name} file is empty", code=f"empty_{name}", param=name)
    return Media.of(name, upload_of(file, name))  # type: ignore[arg-type]  # video or audio


def _cap(file: UploadedFile, limit: int, name: str) -> None:
    if len(file.data) > limit:
        raise PayloadTooLarge(
            f"an {name} is over the {limit / 1024 / 1024:g} MB limit",
            code="file_too_large",
            param=name,
        )


async def _too_long_for_inline(services: Services, request: TutorRequest) -> bool:
    """Whether the video is longer than the inline limit (422 when over the hard limit)."""
    if request.video is None:
        return False
    from megacity.engines.video import video_duration

    policy = services.settings.multimodal
    data = request.video.upload.data
    seconds = await asyncio.to_thread(video_duration, data, max_seconds=policy.max_video_s)
    return seconds > policy.inline_max_video_s


async def _sse(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """The events as SSE; a failure becomes an `error` event, never a silent cut."""
    try:
        async for event in events:
            yield event.sse()
    except MegaCityError as exc:
        yield Event("error", {**exc.envelope(), "status": exc.status}).sse()
    except Exception:
        log.exception("multimodal stream failed")
        body = {
            "message": "the tutor failed; retry",
            "type": "server_error",
            "code": "internal_error",
        }
        yield Event("error", {"error": body, "status": 500}).sse()

"""K-Zone voice references: a song's or a drama line's reference recording, for sing-along
and shadowing attempts (``POST /api/v1/kzone/voice/analyze`` with ``reference_id``).

* ``POST /api/v1/kzone/voice/references`` — multipart ``file``, ``text`` (lyrics or
  script, one line per phrase), ``language``, ``mode`` (singalong, shadowing), ``title``
* ``GET /api/v1/kzone/voice/references``, ``GET/DELETE .../references/{id}``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from megacity.api.context import routing_context, until_disconnect
from megacity.api.responses import route_headers
from megacity.api.schemas import AUDIO_ERROR_RESPONSES, ERROR_RESPONSES
from megacity.api.services import Services
from megacity.api.transcription import audio_upload, read_upload_form
from megacity.errors import BadRequest
from megacity.scoring.languages import LANGUAGES, PROSODY_MODES

if TYPE_CHECKING:
    from megacity.pipelines.voice_references import VoiceReferences

router = APIRouter(tags=["speech"])

PREFIX = "/api/v1/kzone/voice/references"
_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["file", "text", "language", "mode"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "text": {"type": "string", "description": "lyrics or script; one line per phrase"},
        "language": {"enum": list(LANGUAGES)},
        "mode": {"enum": list(PROSODY_MODES)},
        "title": {"type": "string", "maxLength": 200},
    },
}


def _begin(request: Request) -> tuple[Services, VoiceReferences]:
    services: Services = request.app.state.services
    request.scope["state"]["route"] = ("speech", "voice-references", "", "")
    return services, services.voice_references


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _field(value: str | None, name: str) -> str:
    if value is None or not value.strip():
        raise BadRequest(f"the form needs a `{name}` field", param=name)
    return value


@router.post(
    PREFIX,
    status_code=201,
    responses=AUDIO_ERROR_RESPONSES,
    summary="Add a voice reference: its pitch contour and word timings are stored",
    openapi_extra={
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FORM}}}
    },
)
async def add_reference(request: Request) -> Response:
    services, refs = _begin(request)
    ctx = routing_context(request)
    form = await read_upload_form(request, services.settings.speech_max_upload_bytes)
    from megacity.pipelines.voice_references import NewVoiceReference

    new = NewVoiceReference(
        text=_field(form.get("text"), "text"),
        language=_field(form.get("language"), "language").strip().lower(),
        mode=_field(form.get("mode"), "mode").strip().lower(),
        title=form.get("title"),
    ).checked()
    upload = audio_upload(form)
    record, answer = await until_disconnect(
        request, refs.add(ctx, new, upload, request.scope["state"]["started"])
    )
    d = answer.decision
    request.scope["state"]["route"] = ("speech", d.model.name, answer.node, d.zone)
    response = _json(record, 201)
    response.headers.update(route_headers(d, answer.node, answer.route_ms))
    return response


@router.get(PREFIX, responses=ERROR_RESPONSES, summary="Stored voice references, newest first")
async def list_references(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Response:
    _, refs = _begin(request)
    data = await refs.list_references(limit, offset)
    return _json({"object": "list", "data": data, "limit": limit, "offset": offset})


@router.get(f"{PREFIX}/{{reference_id}}", responses=ERROR_RESPONSES, summary="One voice reference")
async def get_reference(request: Request, reference_id: str) -> Response:
    _, refs = _begin(request)
    return _json(await refs.get(reference_id))


@router.delete(
    f"{PREFIX}/{{reference_id}}",
    status_code=204,
    responses=ERROR_RESPONSES,
    summary="Delete a voice reference and its stored contour",
)
async def delete_reference(request: Request, reference_id: str) -> Response:
    _, refs = _begin(request)
    await refs.delete(routing_context(request), reference_id)
    return Response(status_code=204)

"""Speech endpoints: /v1/audio/transcriptions (OpenAI) and K-Zone voice analysis and scoring."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from megacity.api.context import read_json, routing_context, until_disconnect, validate
from megacity.api.openapi_doc import MODEL_ENUM
from megacity.api.responses import route_headers
from megacity.api.schemas import (
    AUDIO_ERROR_RESPONSES,
    ERROR_RESPONSES,
    REFERENCE_TEXT,
    VoiceScoreRequest,
)
from megacity.api.services import Services
from megacity.api.transcription import (
    LANGUAGES,
    MAX_PROMPT_CHARS,
    audio_upload,
    parse_transcription,
    read_upload_form,
    render,
)
from megacity.errors import BadRequest

if TYPE_CHECKING:  # the speech pipeline (numpy, rapidfuzz) loads with the first speech request
    from megacity.routing.speech import SpeechAnswer

router = APIRouter(tags=["speech"])

_TRANSCRIBE_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "model": {
            "type": "string",
            "description": "a speech model or alias (whisper-1); empty or auto: the zone's",
            MODEL_ENUM: "speech",
        },
        "language": {"enum": sorted(LANGUAGES), "description": "ISO-639-1 code"},
        "prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "response_format": {"enum": ["json", "text", "verbose_json", "srt", "vtt"]},
        "timestamp_granularities[]": {"type": "array", "items": {"enum": ["word", "segment"]}},
    },
}
_ANALYZE_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "description": "reference_text and language, or a reference_id (which supplies them)",
    "anyOf": [{"required": ["reference_text", "language"]}, {"required": ["reference_id"]}],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "reference_text": REFERENCE_TEXT,
        "language": {"enum": ["ko", "en", "ja", "zh"]},
        "mode": {"enum": ["read", "shadowing", "singalong"], "default": "read"},
        "model": {"type": "string", MODEL_ENUM: "speech"},
        "reference_id": {
            "type": "string",
            "pattern": "^[0-9a-f]{32}$",
            "description": "a voice reference: adds prosody",
        },
        "forgive_octave": {"type": "boolean", "default": True},
    },
}


def _form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


@router.post(
    "/v1/audio/transcriptions",
    responses=AUDIO_ERROR_RESPONSES,
    summary="Transcribe audio (OpenAI-compatible)",
    openapi_extra=_form_schema(_TRANSCRIBE_FORM),
)
async def transcriptions(request: Request) -> Response:
    services: Services = request.app.state.services
    state = request.scope["state"]
    state["route"] = ("speech", "", "", "")
    ctx = routing_context(request)
    form = await read_upload_form(request, services.settings.speech_max_upload_bytes)
    req = parse_transcription(form)
    decision = services.speech.decide(ctx, req.model)
    state["route"] = ("speech", decision.model.name, "", decision.zone)
    answer = await until_disconnect(
        request,
        services.speech.transcribe(ctx, decision, req.upload, req.options, state["started"]),
    )
    response = render(answer.transcript, req)
    _label(request, response, answer)
    return response


@router.post(
    "/api/v1/kzone/voice/analyze",
    responses=AUDIO_ERROR_RESPONSES,
    summary="Pronunciation analysis of a recording against a reference text",
    openapi_extra=_form_schema(_ANALYZE_FORM),
)
async def voice_analyze(request: Request) -> Response:
    services: Services = request.app.state.services
    state = request.scope["state"]
    state["route"] = ("speech", "", "", "")
    ctx = routing_context(request)
    form = await read_upload_form(request, services.settings.speech_max_upload_bytes)
    upload = audio_upload(form)
    from megacity.pipelines.voice import Attempt

    reference_id = (form.get("reference_id") or "").strip() or None
    if reference_id is None:  # the reference recording supplies these when there is one
        attempt = Attempt(
            reference_text=_required(form.get("reference_text"), "reference_text"),
            language=_required(form.get("language"), "language").strip().lower(),
            mode=(form.get("mode") or "read").strip().lower(),
        )
    else:
        attempt = Attempt(
            reference_text=form.get("reference_text") or "",
            language=(form.get("language") or "").strip().lower(),
            mode=(form.get("mode") or "").strip().lower(),
        )
    model = (form.get("model") or "").strip() or None
    forgive = _flag(form.get("forgive_octave"), "forgive_octave", default=True)
    result, answer = await until_disconnect(
        request,
        services.voice.analyze(
            ctx, attempt, upload, state["started"], model, reference_id, forgive_octave=forgive
        ),
    )
    response = Response(orjson.dumps(result), media_type="application/json")
    _label(request, response, answer)
    return response


@router.post(
    "/api/v1/kzone/voice/score",
    responses=ERROR_RESPONSES,
    summary="Pronunciation scores for a transcript and optional word timings (no audio)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": VoiceScoreRequest.model_json_schema()}},
        }
    },
)
async def voice_score(request: Request) -> Response:
    services: Services = request.app.state.services
    state = request.scope["state"]
    ctx = routing_context(request)
    zone_id, _ = services.selector.zone(ctx)
    state["route"] = ("scoring", "pronunciation", "", zone_id)
    req = validate(VoiceScoreRequest, await read_json(request, services.settings.max_body_bytes))
    from megacity.pipelines.voice import Attempt, score
    from megacity.scoring.pronunciation import RecognizedWord

    words = None
    if req.words is not None:
        for i, w in enumerate(req.words):
            if w.end < w.start:
                raise BadRequest("a word ends before it starts", param=f"words.{i}.end")
        words = [RecognizedWord(w.word, w.start, w.end, w.probability) for w in req.words]
    result = score(Attempt(req.reference_text, req.language, req.mode), req.transcript, words)
    return Response(orjson.dumps(result), media_type="application/json")


def _required(value: str | None, name: str) -> str:
    if value is None or not value.strip():
        raise BadRequest(f"the form needs a `{name}` field", param=name)
    return value


def _flag(value: str | None, name: str, *, default: bool) -> bool:
    raw = (value or "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"`{name}` must be true or false", param=name)


def _label(request: Request, response: Response, answer: SpeechAnswer) -> None:
    d = answer.decision
    request.scope["state"]["route"] = ("speech", d.model.name, answer.node, d.zone)
    response.headers.update(route_headers(d, answer.node, answer.route_ms))

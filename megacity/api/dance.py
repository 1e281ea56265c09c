"""K-Zone Dance Lab endpoints: reference dances, and a learner's attempt scored against one.

* ``POST/GET /api/v1/kzone/dance/references``, ``GET/DELETE .../references/{id}``
* ``POST /api/v1/kzone/dance/analyze`` — a video (multipart) and a ``reference_id``
* ``POST /api/v1/kzone/dance/analyze-keypoints`` — keypoints as JSON (MediaPipe 33 or
  MoveNet/COCO 17 per frame, ``null`` for a frame with no person)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from megacity.api.context import (
    read_json,
    routing_context,
    until_disconnect,
    user_key,
    validate,
)
from megacity.api.multipart import Form
from megacity.api.responses import route_headers
from megacity.api.schemas import ERROR_RESPONSES
from megacity.api.services import Services
from megacity.api.transcription import audio_upload, read_upload_form
from megacity.errors import BadRequest
from megacity.scoring.limits import MAX_FPS, MAX_FRAMES

if TYPE_CHECKING:  # the motion pipeline (numpy, numba, PyAV) loads with the first request
    from megacity.pipelines.dance import DanceLab
    from megacity.routing.pose import PoseAnswer
    from megacity.scoring.dance_types import Mirror
    from megacity.scoring.pose import PoseSequence

router = APIRouter(tags=["dance"])

PREFIX = "/api/v1/kzone/dance"
MIRROR_MODES = ("off", "on", "auto")


class KeypointTrack(BaseModel):
    """Keypoints of one video as a client extracted them."""

    model_config = ConfigDict(extra="forbid")

    keypoints: list[list[list[float]] | None] = Field(
        description="frames × landmarks (33 MediaPipe or 17 COCO/MoveNet) × [x, y, z?, "
        "visibility]; image-normalised 0..1 (or pixels with width/height); null = no person",
        min_length=1,
        max_length=MAX_FRAMES,
    )
    fps: float | None = Field(default=None, gt=0, le=MAX_FPS)
    timestamps: list[float] | None = Field(default=None, description="seconds, per frame")
    width: int | None = Field(default=None, ge=1, le=16384, description="video width (px)")
    height: int | None = Field(default=None, ge=1, le=16384, description="video height (px)")
    order: Literal["xy", "yx"] = Field(
        default="xy", description='"yx" for MoveNet\'s raw [y, x, score] output'
    )


class KeypointsAnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempt: KeypointTrack
    reference_id: str | None = None
    reference: KeypointTrack | None = None
    mirror: Literal["off", "on", "auto"] = "off"
    bpm: float | None = Field(default=None, ge=30, le=300)


_TITLE = r"^[^\x00-\x1f]*[^\x00-\x1f\s\x85][^\x00-\x1f]*$"  # printable, not blank
_REFERENCE_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["file", "title"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "title": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": _TITLE},
        "bpm": {"type": "number", "minimum": 30, "maximum": 300},
    },
}
_ANALYZE_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["file", "reference_id"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "reference_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "mirror": {"enum": list(MIRROR_MODES), "default": "off"},
        "bpm": {"type": "number", "minimum": 30, "maximum": 300},
    },
}


def _form(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def _begin(request: Request, route: str) -> tuple[Services, DanceLab]:
    services: Services = request.app.state.services
    request.scope["state"]["route"] = ("pose", route, "", "")
    return services, services.dance


@router.post(
    f"{PREFIX}/references",
    status_code=201,
    responses=ERROR_RESPONSES,
    summary="Add a reference dance: its video's keypoints are extracted and stored",
    openapi_extra=_form(_REFERENCE_FORM),
)
async def add_reference(request: Request) -> Response:
    services, lab = _begin(request, "references")
    ctx = routing_context(request)
    form = await read_upload_form(request, services.settings.dance_max_upload_bytes, "video")
    upload = audio_upload(form, "video")
    title = form.get("title")
    if title is None:
        raise BadRequest("the form needs a `title` field", code="invalid_title", param="title")
    bpm = _bpm(form)
    record, answer = await until_disconnect(
        request, lab.add_reference(ctx, upload, title, bpm, request.scope["state"]["started"])
    )
    await services.reads.wrote(user_key(request))
    return _answer(request, record, answer, 201)


@router.get(
    f"{PREFIX}/references",
    responses=ERROR_RESPONSES,
    summary="Stored reference dances, newest first",
)
async def list_references(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Response:
    services, lab = _begin(request, "references")
    session = await services.reads.session(user_key(request))
    data = await lab.list_references(limit, offset, session=session)
    return _json({"object": "list", "data": data, "limit": limit, "offset": offset})


@router.get(
    f"{PREFIX}/references/{{reference_id}}",
    responses=ERROR_RESPONSES,
    summary="One reference dance",
)
async def get_reference(request: Request, reference_id: str) -> Response:
    services, lab = _begin(request, "references")
    session = await services.reads.session(user_key(request))
    return _json(await lab.get_reference(reference_id, session=session))


@router.delete(
    f"{PREFIX}/references/{{reference_id}}",
    status_code=204,
    responses=ERROR_RESPONSES,
    summary="Delete a reference dance and its stored keypoints",
)
async def delete_reference(request: Request, reference_id: str) -> Response:
    services, lab = _begin(request, "references")
    await lab.delete_reference(routing_context(request), reference_id)
    await services.reads.wrote(user_key(request))
    return Response(status_code=204)


@router.post(
    f"{PREFIX}/analyze",
    responses=ERROR_RESPONSES,
    summary="Score a learner's dance video against a reference (score, parts, moments, pictures)",
    openapi_extra=_form(_ANALYZE_FORM),
)
async def analyze(request: Request) -> Response:
    from megacity.pipelines.dance import AnalyzeOptions

    services, lab = _begin(request, "analyze")
    ctx = routing_context(request)
    form = await read_upload_form(request, services.settings.dance_max_upload_bytes, "video")
    upload = audio_upload(form, "video")
    reference_id = form.get("reference_id")
    if not reference_id:
        raise BadRequest("the form needs a `reference_id` field", param="reference_id")
    options = AnalyzeOptions(mirror=_mirror(form.get("mirror")), bpm=_bpm(form))
    body, answer = await until_disconnect(
        request,
        lab.analyze(ctx, upload, reference_id, options, request.scope["state"]["started"]),
    )
    return _answer(request, body, answer, 200)


@router.post(
    f"{PREFIX}/analyze-keypoints",
    responses=ERROR_RESPONSES,
    summary="Score keypoints a client extracted itself against a reference",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": KeypointsAnalyzeRequest.model_json_schema()}
            },
        }
    },
)
async def analyze_keypoints(request: Request) -> Response:
    from megacity.pipelines.dance import AnalyzeOptions, check_reference_id

    services, lab = _begin(request, "analyze-keypoints")
    ctx = routing_context(request)
    zone_id, _ = services.selector.zone(ctx)
    request.scope["state"]["route"] = ("scoring", "dance", "", zone_id)
    raw = await read_json(request, services.settings.dance_max_keypoints_bytes)
    req = validate(KeypointsAnalyzeRequest, raw)
    if (req.reference_id is None) == (req.reference is None):
        raise BadRequest("give exactly one of `reference_id` and `reference`", param="reference_id")
    attempt = to_sequence(req.attempt, "attempt")
    reference: PoseSequence | str = (
        check_reference_id(req.reference_id)
        if req.reference_id is not None
        else to_sequence(req.reference, "reference")  # type: ignore[arg-type]
    )
    options = AnalyzeOptions(mirror=req.mirror, bpm=req.bpm)
    body = await lab.analyze_keypoints(ctx, attempt, reference, options)
    if req.reference_id is not None:
        body["reference_id"] = req.reference_id
    return _json(body)


def to_sequence(track: KeypointTrack, name: str) -> PoseSequence:
    """A client's keypoint track as a PoseSequence; 400 naming the field when it is malformed."""
    import numpy as np

    from megacity.scoring.pose import PoseSequence, coco17_to_blazepose

    frames = track.keypoints
    shape: tuple[int, int] | None = None
    for i, frame in enumerate(frames):
        if frame is None:
            continue
        rows = len(frame)
        cols = {len(row) for row in frame}
        if rows not in (17, 33) or len(cols) != 1 or not cols <= {3, 4}:
            raise BadRequest(
                f"{name}.keypoints.{i}: a frame must be 33 (MediaPipe) or 17 (COCO/MoveNet)"
                " landmarks of [x, y, visibility] or [x, y, z, visibility]",
                param=f"{name}.keypoints.{i}",
            )
        if shape is None:
            shape = (rows, cols.pop())
        elif shape != (rows, len(frame[0])):
            raise BadRequest(
                f"{name}.keypoints.{i}: every frame must have the same layout as the first",
                param=f"{name}.keypoints.{i}",
            )
    if shape is None:
        raise BadRequest(f"{name}: no frame has a person", code="no_person", param=name)
    kp = np.full((len(frames), *shape), np.nan)
    for i, frame in enumerate(frames):
        if frame is not None:
            kp[i] = frame
    if track.width is not None and track.height is not None:
        xy = (1, 0) if track.order == "yx" else (0, 1)
        if np.nanmax(np.abs(kp[:, :, list(xy)])) > 2.0:  # pixels → image-normalised
            kp[:, :, xy[0]] /= track.width
            kp[:, :, xy[1]] /= track.height
    if shape[0] == 17:
        kp = coco17_to_blazepose(kp, yx=track.order == "yx")
    elif track.order == "yx":
        kp[:, :, [0, 1]] = kp[:, :, [1, 0]]
    aspect = track.width / track.height if track.width and track.height else 1.0
    timestamps = None if track.timestamps is None else np.asarray(track.timestamps)
    if track.fps is None and timestamps is None:
        raise BadRequest(f"{name}: give `fps` or `timestamps`", param=f"{name}.fps")
    try:
        return PoseSequence(kp, fps=track.fps, timestamps=timestamps, aspect_ratio=aspect)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}", param=name) from None


def _mirror(value: str | None) -> Mirror:
    mode = (value or "off").strip().lower()
    if mode not in MIRROR_MODES:
        raise BadRequest(f"mirror must be one of {', '.join(MIRROR_MODES)}", param="mirror")
    return mode  # type: ignore[return-value]  # checked against MIRROR_MODES


def _bpm(form: Form, name: str = "bpm") -> float | None:
    from megacity.pipelines.dance import check_bpm

    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"`{name}` must be a number", param=name) from None
    return check_bpm(value)


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def _answer(request: Request, body: dict[str, Any], answer: PoseAnswer, status: int) -> Response:
    d = answer.decision
    request.scope["state"]["route"] = ("pose", d.model.name, answer.node, d.zone)
    response = _json(body, status)
    response.headers.update(route_headers(d, answer.node, answer.route_ms))
    return response

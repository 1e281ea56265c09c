"""Consent records for voice and face synthesis.

* ``POST /api/v1/consents`` — record one (201, the record, its URL in Location)
* ``GET /api/v1/consents`` — the caller's records, newest first (``?subject_id=``)
* ``GET /api/v1/consents/{id}`` — one of the caller's records
* ``POST /api/v1/consents/{id}/revoke`` — by the owner or the subject; at once, idempotent

Records belong to the user who recorded them; anyone else gets 404, never 403, so
record ids do not leak. An anonymous caller gets 401: a consent must be attributable.
The generation endpoints check a record with `megacity.db.consents.require_consent`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from megacity.api.context import read_json, routing_context, user_key, validate
from megacity.api.safety_schemas import (
    SAFE_ID,
    ConsentCreate,
    ConsentList,
    ConsentView,
    json_body,
)
from megacity.api.schemas import ERROR_RESPONSES, ErrorEnvelope
from megacity.api.services import Services
from megacity.db.paging import MAX_PAGE
from megacity.errors import Unauthorized

if TYPE_CHECKING:  # SQLAlchemy loads with the first consent request, not at start-up
    from megacity.db.models import Consent

router = APIRouter(tags=["consents"])

PREFIX = "/api/v1/consents"
MAX_BODY = 4096  # bytes: ids, three scopes, a 512-character evidence reference
RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, 401: {"model": ErrorEnvelope}}


def consent_view(consent: Consent) -> dict[str, Any]:
    """The JSON a client sees for a record (ConsentView), with its status now."""
    from megacity.db.consents import consent_status, scopes_of

    return {
        "id": consent.id,
        "subject_id": consent.subject_id,
        "granted_by": consent.granted_by,
        "scopes": scopes_of(consent),
        "evidence": consent.evidence,
        "status": consent_status(consent),
        "created_at": consent.created_at,
        "expires_at": consent.expires_at,
        "revoked_at": consent.revoked_at,
        "revoked_by": consent.revoked_by,
    }


def _begin(request: Request) -> tuple[Services, str]:
    """The services and the requesting user; 401 for an anonymous request."""
    services: Services = request.app.state.services
    request.scope["state"]["route"] = ("safety", "consents", "", "")
    user = routing_context(request).user_id
    if user is None:
        raise Unauthorized("consent records need an identified user", code="user_required")
    return services, user


@router.post(
    PREFIX,
    status_code=201,
    response_model=ConsentView,
    responses=RESPONSES,
    summary="Record a person's consent to have their voice or face synthesised",
    openapi_extra=json_body(ConsentCreate),
)
async def post_consent(request: Request) -> Response:
    services, user = _begin(request)
    body = validate(ConsentCreate, await read_json(request, MAX_BODY))

    def store() -> dict[str, Any]:
        from megacity.db.consents import create_consent

        with services.db.session() as session:
            return consent_view(create_consent(session, owner_id=user, **body.model_dump()))

    view = await asyncio.to_thread(store)
    await services.reads.wrote(user_key(request))
    return _json(view, 201, {"Location": f"{PREFIX}/{view['id']}"})


@router.get(
    PREFIX,
    response_model=ConsentList,
    responses=RESPONSES,
    summary="The caller's consent records, newest first",
)
async def get_consents(
    request: Request,
    subject_id: Annotated[str | None, Query(pattern=SAFE_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    services, user = _begin(request)
    opened = await services.reads.session(user_key(request))

    def read() -> list[dict[str, Any]]:
        from megacity.db.consents import list_consents

        with opened() as session:
            return [
                consent_view(c) for c in list_consents(session, user, subject_id, limit, offset)
            ]

    data = await asyncio.to_thread(read)
    return _json({"object": "list", "data": data, "limit": limit, "offset": offset}, 200)


@router.get(
    PREFIX + "/{consent_id}",
    response_model=ConsentView,
    responses=RESPONSES,
    summary="One of the caller's consent records",
)
async def get_one_consent(consent_id: str, request: Request) -> Response:
    services, user = _begin(request)
    opened = await services.reads.session(user_key(request))

    def read() -> dict[str, Any]:
        from megacity.db.consents import get_consent

        with opened() as session:
            return consent_view(get_consent(session, consent_id, user))

    return _json(await asyncio.to_thread(read), 200)


@router.post(
    PREFIX + "/{consent_id}/revoke",
    response_model=ConsentView,
    responses=RESPONSES,
    summary="Revoke a consent (its owner or its subject); effective for every later request",
)
async def post_revoke(consent_id: str, request: Request) -> Response:
    services, user = _begin(request)

    def revoke() -> dict[str, Any]:
        from megacity.db.consents import revoke_consent

        with services.db.session() as session:
            return consent_view(revoke_consent(session, consent_id, user))

    view = await asyncio.to_thread(revoke)
    await services.reads.wrote(user_key(request))
    return _json(view, 200)


def _json(data: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")

"""The safety steps the handlers share: who is calling (hashed), and under which policy."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Literal

from starlette.requests import Request

from megacity.api.context import user_key, user_named
from megacity.errors import BadRequest, Forbidden
from megacity.pipelines.guard import Caller
from megacity.routing.context import RequestContext

if TYPE_CHECKING:
    from megacity.db import Database

log = logging.getLogger("megacity.safety")


def caller(request: Request, ctx: RequestContext) -> Caller:
    """The hashed user, the zone (400 when unknown), its safety policy and locale."""
    services = request.app.state.services
    zone_id, zone = services.selector.zone(ctx)
    locale = services.selector.locale(ctx, zone)
    return Caller(user_key(request), zone_id, zone.safety, locale, user_named(request))


async def check_synthesis(
    request: Request,
    ctx: RequestContext,
    *,
    kind: Literal["voice", "face"],
    text: str,
    identity_text: str,
    subject_id: str | None,
    consent_id: str | None,
) -> None:
    """The checks before a voice or face is synthesised.

    `text` (the words to speak, the image prompt) is moderated under the zone's policy;
    `identity_text` (the voice asked for, the image prompt) must name no protected
    identity; a `subject_id` (a real person's voice or face) needs that person's consent
    record, valid now and covering the scope (403 with the reason otherwise).
    """
    services = request.app.state.services
    call = caller(request, ctx)
    await services.guard.moderate_input(call, text)
    identities = services.identities
    match = identities.match(identity_text, kind) if identities is not None else None
    if match is not None:
        services.metrics.safety_event("identity", "refused", call.zone)
        raise Forbidden(
            f"synthesising the {kind} of a protected identity is not allowed",
            code="protected_identity",
        )
    if consent_id is not None and subject_id is None:
        raise BadRequest("consent_id needs the subject_id it covers", param="subject_id")
    if subject_id is None:
        return
    scope = "face_synthesis" if kind == "face" else "voice_synthesis"
    record = await asyncio.to_thread(
        _require, services.db, consent_id, subject_id, scope, ctx.user_id
    )
    services.metrics.safety_event("consent", "checked", call.zone)
    log.info(
        "synthesis under consent",
        extra={"user": call.user, "consent": record, "scope": scope, "zone": call.zone},
    )


def _require(
    db: Database, consent_id: str | None, subject_id: str, scope: str, requester: str | None
) -> str:
    with db.session() as session:
        from megacity.db.consents import require_consent

        return require_consent(
            session, consent_id, subject_id=subject_id, scope=scope, requester=requester
        ).id

"""The model registry: list models and versions, switch the active version at run time."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request

from megacity.api.context import read_json, validate
from megacity.api.schemas import ERROR_RESPONSES, ActivateRequest, RegistryView
from megacity.api.services import Services
from megacity.errors import Forbidden, Unauthorized
from megacity.routing.registry import ResolvedModel

router = APIRouter(tags=["registry"])
log = logging.getLogger("megacity.admin")


@router.get("/api/v1/models/registry", response_model=RegistryView)
async def registry(request: Request) -> RegistryView:
    services: Services = request.app.state.services
    return RegistryView(models=services.registry.describe())


@router.post("/api/v1/models/{name}/activate", responses=ERROR_RESPONSES)
async def activate(name: str, request: Request) -> dict[str, object]:
    """Switch a model's active version on every replica (ai:admin, or the admin token).

    The activation is stored (it survives restarts); the other replicas apply it within
    MEGACITY_REGISTRY_SYNC_INTERVAL_S.
    """
    services: Services = request.app.state.services
    require_admin(request, services)
    body = validate(ActivateRequest, await read_json(request, 4096))
    principal = request.scope.get("state", {}).get("principal")
    by = principal.subject if principal is not None else None
    resolved = await activate_version(services, name, body.version, by)
    return {
        "name": resolved.name,
        "active_version": resolved.version,
        "served_as": resolved.served_as,
    }


async def activate_version(
    services: Services, name: str, version: str, by: str | None = None
) -> ResolvedModel:
    """Switch a model's active version on every replica: the one code path of the API and
    the dashboard (stored, so it survives restarts; other replicas apply it within
    MEGACITY_REGISTRY_SYNC_INTERVAL_S)."""
    resolved = await services.activations.activate(name, version, by=by)
    log.info(
        "model version activated",
        extra={"model": resolved.name, "version": resolved.version, "by": by},
    )
    return resolved


def require_admin(request: Request, services: Services) -> None:
    """With auth on, the guard has already required ai:admin; off, the admin token decides."""
    principal = request.scope.get("state", {}).get("principal")
    if principal is not None and principal.kind != "anonymous":
        return
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    check_admin_token(services, value if scheme.lower() == "bearer" else None)


def check_admin_token(services: Services, given: str | None) -> None:
    """With auth off, activation needs MEGACITY_ADMIN_TOKEN (from the API or the dashboard)."""
    token = services.settings.admin_token
    if token is None:
        raise Forbidden("model activation is disabled: no admin token is configured")
    if not given:
        raise Unauthorized("admin bearer token required", headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise Forbidden("invalid admin token")

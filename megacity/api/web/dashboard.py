"""The operator dashboard (ai:admin): the page, its refreshing panels, its JSON data, the
routing explainer and version activation (confirmed, CSRF-checked, the API's code path)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from megacity.api.admin import activate_version, check_admin_token
from megacity.api.errors import error_response
from megacity.api.web.explain import MAX_PROMPT_CHARS, Question, explain
from megacity.api.web.i18n import translator
from megacity.api.web.overview import overview
from megacity.api.web.render import language
from megacity.api.web.session import Visitor
from megacity.api.web.site import Site
from megacity.auth.principal import SCOPE_ADMIN
from megacity.config.topology import LOCALES
from megacity.errors import BadRequest, MegaCityError
from megacity.observability.rolling import TIERS, WINDOWS

router = APIRouter(include_in_schema=False)
REFRESH_S = 5
DEFAULT_WINDOW = TIERS[0].name


def _window(request: Request) -> str:
    window = request.query_params.get("window") or DEFAULT_WINDOW
    return window if window in WINDOWS else DEFAULT_WINDOW


async def _admin(request: Request) -> tuple[Site, Visitor | Response]:
    site: Site = request.app.state.site
    return site, await site.gate(request, SCOPE_ADMIN)


@router.get("/dashboard")
async def page(request: Request) -> Response:
    site, visitor = await _admin(request)
    if isinstance(visitor, Response):
        return visitor
    window = _window(request)
    topo = site.services.topology
    return site.render(
        request,
        visitor,
        "dashboard.html",
        data=await overview(site.services, window, site.jobs),
        window=window,
        windows=list(WINDOWS),
        refresh_s=REFRESH_S,
        zones=sorted(topo.zones),
        default_zone=topo.default_zone,
        locales=LOCALES,
        regions=[r.name for r in topo.regions],
        **_registry(site, visitor),
    )


@router.get("/dashboard/panels")
async def panels(request: Request) -> Response:
    site, visitor = await _admin(request)
    if isinstance(visitor, Response):
        return visitor
    data = await overview(site.services, _window(request), site.jobs)
    return site.render(request, visitor, "partials/panels.html", data=data)


@router.get("/dashboard/data")
async def data(request: Request) -> Response:
    """The dashboard's figures as JSON (a bearer token works here too, for scripts)."""
    site: Site = request.app.state.site
    visitor = await site.sessions.visitor(request)
    if visitor.principal is None:
        return error_response(
            401, "authentication required", "authentication_error", "unauthorized"
        )
    if not visitor.principal.has_scope(SCOPE_ADMIN):
        return error_response(
            403,
            f"this credential lacks the {SCOPE_ADMIN} scope",
            "permission_error",
            "insufficient_scope",
        )
    body = await overview(site.services, _window(request), site.jobs)
    return Response(orjson.dumps(body), media_type="application/json", headers=site.pages.headers())


@router.post("/dashboard/explain")
async def explain_route(request: Request) -> Response:
    site, visitor = await _admin(request)
    if isinstance(visitor, Response):
        return visitor
    fields = await site.form(request)
    prompt = fields.get("prompt", "")
    if not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"the prompt must have 1 to {MAX_PROMPT_CHARS} characters", param="prompt")
    question = Question(
        prompt=prompt,
        zone=fields.get("zone") or None,
        locale=fields.get("locale") or None,
        region=fields.get("region") or None,
        strategy=fields.get("strategy") or None,
    )
    answer = explain(site.services, question)
    return site.render(
        request, visitor, "partials/explain.html", e=answer, error=answer.get("error")
    )


@router.get("/dashboard/registry")
async def registry(request: Request) -> Response:
    site, visitor = await _admin(request)
    if isinstance(visitor, Response):
        return visitor
    return site.render(request, visitor, "partials/registry.html", **_registry(site, visitor))


@router.get("/dashboard/models/{name}/confirm")
async def confirm(name: str, request: Request) -> Response:
    """Step one of an activation: say what will change and ask for a confirmation."""
    site, visitor = await _admin(request)
    if isinstance(visitor, Response):
        return visitor
    registry = site.services.registry
    version = request.query_params.get("version", "")
    model = registry.model(name)  # 404 for an unknown model
    if not any(v.version == version for v in model.versions):
        raise BadRequest(f"model {model.name!r} has no version {version!r}", param="version")
    current = registry.resolve(model.name).version
    return site.render(
        request,
        visitor,
        "partials/confirm.html",
        model=model.name,
        version=version,
        current=current,
    )


@router.post("/dashboard/models/{name}/activate")
async def activate(name: str, request: Request) -> Response:
    """Step two: the confirmed switch, through the API's own activation code path."""
    site, visitor = await _admin(request)
    if isinstance(visitor, Response):
        return visitor
    fields = await site.form(request)
    t = translator(language(request))
    notice = problem = None
    try:
        if not site.sessions.enabled:
            check_admin_token(site.services, fields.get("admin_token") or None)
        by = visitor.principal.subject if visitor.principal is not None else None
        resolved = await activate_version(site.services, name, fields.get("version", ""), by)
        notice = f"{t('reg.activated')} {resolved.name} → {resolved.version}"
    except MegaCityError as exc:
        problem = exc.message
    context = {**_registry(site, visitor), "notice": notice, "problem": problem}
    return site.render(request, visitor, "partials/registry.html", **context)


def _registry(site: Site, visitor: Visitor) -> dict[str, Any]:
    return {
        "registry": site.services.registry.describe(),
        "can_activate": visitor.can(SCOPE_ADMIN),
        "notice": None,
        "problem": None,
    }

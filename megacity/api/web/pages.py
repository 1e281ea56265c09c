"""The landing page, login and logout, the API docs (Swagger UI served from the package), and
the learner demos, whose scripts call the public API with the session cookie."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from megacity.api.web.i18n import translator
from megacity.api.web.render import language
from megacity.api.web.session import CsrfFailed, safe_next, set_session
from megacity.api.web.site import Site
from megacity.auth.principal import SCOPE_USE, AuthError
from megacity.config.topology import LOCALES, Engine
from megacity.pipelines.multimodal import Scenario

router = APIRouter(include_in_schema=False)


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


@router.get("/")
async def landing(request: Request) -> Response:
    site = _site(request)
    visitor = await site.sessions.visitor(request)
    topo = site.services.topology
    states = site.services.balancer.nodes.values()
    return site.render(
        request,
        visitor,
        "landing.html",
        show_status=visitor.can(SCOPE_USE),
        nodes_up=sum(1 for s in states if s.alive()),
        nodes_total=len(site.services.balancer.nodes),
        engines=sorted({n.engine.value for n in topo.nodes}),
        zones=sorted(topo.zones),
    )


@router.get("/login")
async def login_form(request: Request) -> Response:
    site = _site(request)
    visitor = await site.sessions.visitor(request)
    target = safe_next(request.query_params.get("next"))
    return site.render(request, visitor, "login.html", next=target, error=None, missing_scope=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the typed token; keep it in the session cookie and go back where the user was."""
    site = _site(request)
    visitor = await site.sessions.visitor(request)
    t = translator(language(request))
    try:
        fields = await site.form(request)
    except CsrfFailed:
        return site.error(request, visitor, 403, "error.csrf")
    target = safe_next(fields.get("next"))
    if not site.sessions.enabled:
        return RedirectResponse(target, status_code=303)
    try:
        await site.sessions.login(fields.get("token", ""))
    except AuthError:
        return site.render(
            request,
            visitor,
            "login.html",
            401,
            next=target,
            error=t("login.failed"),
            missing_scope=None,
        )
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, fields["token"].strip())
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    site = _site(request)
    visitor = await site.sessions.visitor(request)
    try:
        await site.form(request)
    except CsrfFailed:
        return site.error(request, visitor, 403, "error.csrf")
    response = RedirectResponse("/", status_code=303)
    set_session(response, request, None)
    return response


@router.get("/docs")
async def docs(request: Request) -> Response:
    """Swagger UI from the package's own copy (no CDN): works offline and under the CSP."""
    return await _gated(request, "docs.html", openapi_url=request.app.openapi_url)


@router.get("/demo/voice")
async def voice(request: Request) -> Response:
    return await _gated(request, "voice.html", zones=_zones_with(_site(request), Engine.SPEECH))


@router.get("/demo/dance")
async def dance(request: Request) -> Response:
    return await _gated(request, "dance.html", zones=_zones_with(_site(request), Engine.POSE))


@router.get("/demo/chat")
async def chat(request: Request) -> Response:
    site = _site(request)
    zones = site.services.topology.zones
    strategies = site.services.strategies
    return await _gated(
        request,
        "chat.html",
        zones=[
            {"name": z, "strategy": zones[z].default_strategy, "locale": zones[z].default_locale}
            for z in _zones_with(site, Engine.LLM)
        ],
        strategies=[strategies.get(n) for n in strategies.names()],
        locales=LOCALES,
    )


@router.get("/demo/tutor")
async def tutor(request: Request) -> Response:
    """The multimodal tutor: a question with a photo, video and/or audio → one streamed answer."""
    site = _site(request)
    zones = site.services.topology.zones
    return await _gated(
        request,
        "tutor.html",
        zones=[
            {
                "name": z,
                "locale": zones[z].default_locale,
                "engines": sorted(e.value for e in zones[z].engines),
            }
            for z in _zones_with(site, Engine.LLM)
        ],
        scenarios=[s.value for s in Scenario],
        locales=LOCALES,
    )


async def _gated(request: Request, template: str, **context: Any) -> Response:
    """A page for holders of ai:use; the login form (or a 403 page) for anyone else."""
    site = _site(request)
    visitor = await site.gate(request, SCOPE_USE)
    if isinstance(visitor, Response):
        return visitor
    return site.render(request, visitor, template, **context)


def _zones_with(site: Site, engine: Engine) -> list[str]:
    """The zones that have a model of `engine`, the router's default zone first."""
    topo = site.services.topology
    zones = [name for name, zone in topo.zones.items() if engine in zone.engines]
    if topo.default_zone in zones:
        zones.remove(topo.default_zone)
        zones.insert(0, topo.default_zone)
    return zones

"""The pages: a landing page, the operator dashboard, the learner demos and the API docs.

Server-rendered Jinja2 templates with htmx for partial updates and uPlot for charts, every
asset served from the package (`static/`, vendored from the npm registry with licences),
nothing from a CDN, under a strict Content-Security-Policy. Jinja2 is imported on the
first page request, so pages cost the router's start-up nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from megacity.api.services import Services
from megacity.api.web.overview import JobsCache
from megacity.api.web.render import Pages
from megacity.api.web.session import CsrfSigner, Sessions
from megacity.api.web.site import Site
from megacity.storage.signing import signing_key

STATIC = Path(__file__).resolve().parent / "static"


class _Static(StaticFiles):
    """The package's static files, never sniffed as another type, cached for an hour."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
        return response


def build_sessions(services: Services) -> Sessions:
    """Sessions whose CSRF key derives from the URL signing key (shared by the replicas)."""
    signer = CsrfSigner(signing_key(services.settings))
    return Sessions(signer, services.authenticator, enabled=services.settings.auth_enabled)


def install(app: FastAPI, services: Services, sessions: Sessions) -> None:
    """Mount the static files and add the page routes (kept out of the OpenAPI document)."""
    from megacity.api.web import dashboard, pages

    app.state.site = Site(services, sessions, Pages(services.settings), JobsCache())
    app.mount("/static", _Static(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(dashboard.router)

"""What every page handler needs: the services, sessions, the renderer, and who may see what."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

import megacity
from megacity.api.context import read_body
from megacity.api.services import Services
from megacity.api.web.i18n import translator
from megacity.api.web.overview import JobsCache
from megacity.api.web.render import Pages, language
from megacity.api.web.session import Sessions, Visitor, login_redirect
from megacity.errors import BadRequest, UnsupportedMediaType

MAX_FORM_BYTES = 64 * 1024


@dataclass
class Site:
    """The pages' composition root, kept on `app.state.site`."""

    services: Services
    sessions: Sessions
    pages: Pages
    jobs: JobsCache

    async def gate(self, request: Request, scope: str) -> Visitor | Response:
        """The visitor if they hold `scope`; else the login form (or a 403 page)."""
        visitor = await self.sessions.visitor(request)
        if visitor.principal is None:
            return login_redirect(request)
        if not visitor.principal.has_scope(scope):
            return self.error(request, visitor, 403, "", missing=scope)
        return visitor

    def render(
        self, request: Request, visitor: Visitor, template: str, status: int = 200, **ctx: object
    ) -> Response:
        return self.pages.render(
            request, visitor, template, status, router_version=megacity.__version__, **ctx
        )

    def error(
        self, request: Request, visitor: Visitor, status: int, message: str, missing: str = ""
    ) -> Response:
        """An error page: `message` is a text key; `missing` names a scope the visitor lacks."""
        t = translator(language(request))
        title = t("error.not_found") if status == 404 else t("error.forbidden")
        text = f"{t('login.needs_scope')} {missing}" if missing else t(message)
        return self.render(request, visitor, "error.html", status, title=title, message=text)

    async def form(self, request: Request) -> dict[str, str]:
        """A bounded url-encoded form whose CSRF token (field or header) matches this browser."""
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            raise UnsupportedMediaType("expected a url-encoded form")
        body = await read_body(request, MAX_FORM_BYTES)
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), max_num_fields=32))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("malformed form", code="invalid_form") from None
        given = fields.get("csrf_token") or request.headers.get("x-csrf-token")
        self.sessions.check_csrf(request, given)
        return fields

"""Server-rendered pages: a Jinja2 environment built on the first page (never at start-up),
the visitor's language, and the security headers every page carries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from megacity.api.web.i18n import LANGUAGES, translator
from megacity.api.web.session import Visitor, set_nonce
from megacity.config.settings import Settings
from megacity.storage.signing import public_base_url

LANG_COOKIE = "megacity_lang"


def language(request: Request) -> str:
    """?lang=, else the language cookie, else Accept-Language (Korean or English)."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in LANGUAGES:
        return asked
    accept = request.headers.get("accept-language", "").lower()
    return "ko" if accept.startswith("ko") else "en"


def content_security_policy(settings: Settings) -> str:
    """Scripts, styles, fonts and connections from this origin only; pictures may also come
    from the object store's download origin (signed URLs); no inline script or style."""
    images = ["'self'", "data:", "blob:"]
    for url in (public_base_url(settings), settings.s3_endpoint_url):
        parts = urlsplit(url or "")
        if parts.scheme in ("http", "https") and parts.netloc:
            images.append(f"{parts.scheme}://{parts.netloc}")
    if settings.s3_bucket and not settings.s3_endpoint_url:  # AWS S3's presigned URLs
        images.append("https://*.amazonaws.com")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            "media-src 'self' blob:",
            "connect-src 'self'",
            "font-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


class Pages:
    """Renders the package's templates; Jinja2 is imported on the first page only."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.csp = content_security_policy(settings)
        self._env: Any = None

    def environment(self) -> Any:
        if self._env is None:
            import jinja2  # the pages' cost stays off the router's start-up

            self._env = jinja2.Environment(
                loader=jinja2.PackageLoader("megacity.api.web", "templates"),
                autoescape=True,
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
        return self._env

    def render(
        self,
        request: Request,
        visitor: Visitor,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> Response:
        """The template as an HTML response with the security headers and cookies it needs."""
        lang = language(request)
        html = (
            self.environment()
            .get_template(template)
            .render(
                t=translator(lang),
                lang=lang,
                visitor=visitor,
                csrf=visitor.csrf,
                path=request.url.path,
                auth_enabled=visitor.auth_enabled,
                **context,
            )
        )
        response = HTMLResponse(html, status, headers=self.headers())
        set_nonce(response, request, visitor)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, path="/", samesite="strict", max_age=31536000)
        return response

    def headers(self) -> dict[str, str]:
        return {
            "Content-Security-Policy": self.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
        }

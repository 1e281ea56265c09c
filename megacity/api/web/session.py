"""Browser sessions: the token in an HttpOnly cookie, CSRF tokens, and who may see a page.

The login form takes a bearer token (or service API key) and keeps it in the session
cookie: HttpOnly (no script can read it), SameSite=Strict (no other site's page can send
it), Secure when the page was served over TLS. Every request that changes state — a
form post, or a page's own call to the API — must also carry a CSRF token: an HMAC,
under a key the replicas share, of a random per-browser nonce (its own cookie) and the
session, so a token stolen from one session or browser is worth nothing in another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import Request, cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.types import Scope

from megacity.auth.authenticator import Authenticator
from megacity.auth.principal import ANONYMOUS, AuthError, InvalidCredentials, Principal
from megacity.errors import Forbidden

SESSION_COOKIE = "megacity_session"
NONCE_COOKIE = "megacity_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_CREDENTIAL = 4000  # a JWT is a few hundred bytes; browsers drop cookies over 4 KB


def cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies (the last value of a repeated name)."""
    for name, value in scope["headers"]:
        if name == b"cookie":
            return cookie_parser(value.decode("latin-1"))
    return {}


class CsrfSigner:
    """CSRF token = HMAC(key, nonce ‖ SHA-256(session)): bound to a browser and a session."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"megacity-csrf\0" + key).digest()

    def token(self, nonce: str, session: str | None) -> str:
        bound = hashlib.sha256((session or "").encode("utf-8", "replace")).digest()
        msg = nonce.encode("utf-8", "replace") + b"\0" + bound
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def check(self, jar: dict[str, str], given: str | None) -> bool:
        """Whether `given` is the CSRF token of the browser and session in `jar`."""
        nonce = jar.get(NONCE_COOKIE)
        if not nonce or not given:
            return False
        expected = self.token(nonce, jar.get(SESSION_COOKIE))
        return hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace"))


class CsrfFailed(Forbidden):
    code = "csrf_failed"


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking at a page: their principal (None: not logged in) and CSRF token."""

    principal: Principal | None
    csrf: str
    new_nonce: str | None  # set as a cookie with the response when the browser had none
    auth_enabled: bool

    def can(self, scope: str) -> bool:
        return self.principal is not None and self.principal.has_scope(scope)


class Sessions:
    """Reads and writes the session and nonce cookies; the one source of page identity."""

    def __init__(
        self, signer: CsrfSigner, authenticator: Authenticator | None, *, enabled: bool
    ) -> None:
        self.signer = signer
        self.authenticator = authenticator
        self.enabled = enabled

    async def visitor(self, request: Request) -> Visitor:
        """The visitor's principal (a bearer header wins over the cookie) and CSRF token."""
        jar = cookies(request.scope)
        nonce = jar.get(NONCE_COOKIE)
        new_nonce = None
        if not nonce or len(nonce) > 64:
            nonce = new_nonce = secrets.token_urlsafe(24)
        csrf = self.signer.token(nonce, jar.get(SESSION_COOKIE))
        principal = await self.principal(request, jar)
        return Visitor(principal, csrf, new_nonce, self.enabled)

    async def principal(self, request: Request, jar: dict[str, str]) -> Principal | None:
        if not self.enabled or self.authenticator is None:
            return ANONYMOUS
        authorization = request.headers.get("authorization")
        if authorization is None:
            credential = jar.get(SESSION_COOKIE)
            if not credential:
                return None
            authorization = f"Bearer {credential}"
        try:
            return await self.authenticator.authenticate(authorization, None)
        except AuthError:
            return None

    async def login(self, credential: str) -> Principal:
        """Verify a token or API key typed into the login form; AuthError when it is bad."""
        if self.authenticator is None:
            raise RuntimeError("auth is off: there is nothing to log in to")
        credential = credential.strip()
        if not credential or len(credential) > MAX_CREDENTIAL or not credential.isascii():
            raise InvalidCredentials("a malformed credential was typed into the login form")
        return await self.authenticator.authenticate(f"Bearer {credential}", None)

    def check_csrf(self, request: Request, given: str | None) -> None:
        """403 csrf_failed unless `given` (form field or header) matches this browser."""
        if not self.signer.check(cookies(request.scope), given):
            raise CsrfFailed("the form is stale or came from another site; reload the page")

    def credential_for_api(self, scope: Scope) -> tuple[str | None, bool]:
        """For the auth guard: the session's credential, and whether the CSRF check passed.

        A page's own call to the API (fetch, htmx) carries the cookie and, when it changes
        state, the CSRF token in X-CSRF-Token; a safe method needs only the cookie.
        """
        jar = cookies(scope)
        credential = jar.get(SESSION_COOKIE)
        if not credential:
            return None, True
        if scope.get("method", "GET") in SAFE_METHODS:
            return credential, True
        given = None
        for name, value in scope["headers"]:
            if name == CSRF_HEADER.encode():
                given = value.decode("latin-1")
        return credential, self.signer.check(jar, given)


def set_session(response: Response, request: Request, credential: str | None) -> None:
    """Set (or with None, clear) the session cookie: HttpOnly, SameSite=Strict, Secure on TLS."""
    secure = request.url.scheme == "https"
    if credential is None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, samesite="strict")
        return
    response.set_cookie(
        SESSION_COOKIE, credential, path="/", httponly=True, secure=secure, samesite="strict"
    )


def set_nonce(response: Response, request: Request, visitor: Visitor) -> None:
    if visitor.new_nonce is not None:
        response.set_cookie(
            NONCE_COOKIE,
            visitor.new_nonce,
            path="/",
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="strict",
        )


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to after login (never another site: //evil, /\\evil, http:…)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(c in target for c in "\r\n\\")
        or len(target) > 500
    ):
        return default
    return target


def login_redirect(request: Request) -> Response:
    """To the login form, coming back here afterwards (htmx follows HX-Redirect)."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login?next=" + quote(safe_next(here), safe="/")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)

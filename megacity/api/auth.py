"""The auth guard (pure ASGI, before routing) and the JWKS route.

Every HTTP request is matched against the access rules: public paths pass untouched;
any other path, including one that does not exist (so that a 404 never tells a
stranger what exists), needs a credential with the rule's scope, a zone it may use,
and, for a user's token, the same X-User-Id as its subject. On success the handlers
find `state["principal"]` and `state["user_id"]`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from megacity.api.errors import error_response
from megacity.api.web.session import CsrfFailed, Sessions
from megacity.auth.authenticator import Authenticator
from megacity.auth.keys import KeySet
from megacity.auth.principal import (
    ANONYMOUS,
    REALM,
    SCOPE_ADMIN,
    SCOPE_USE,
    AuthError,
    Principal,
)
from megacity.errors import Forbidden, MegaCityError

log = logging.getLogger("megacity.auth")
JWKS_PATH = "/.well-known/jwks.json"
PAGE_PATHS = r"/|/login|/logout|/docs|/static/.+|/dashboard(/.*)?|/demo(/.*)?"


@dataclass(frozen=True, slots=True)
class AccessRule:
    """Requests of `method` (None: any; GET also covers HEAD) on `path` need `scope`.

    `scope` None makes the path public: no credential is asked for at all.
    """

    method: str | None
    path: re.Pattern[str]
    scope: str | None

    def matches(self, method: str, path: str) -> bool:
        allowed = self.method in (None, method) or (self.method, method) == ("GET", "HEAD")
        return allowed and self.path.fullmatch(path) is not None


DEFAULT_RULES: tuple[AccessRule, ...] = (
    AccessRule("GET", re.compile(r"/healthz|/readyz|/metrics"), None),
    AccessRule("GET", re.compile(re.escape(JWKS_PATH)), None),
    # A signed URL carries its own credential (the signature), checked by the handler.
    AccessRule("GET", re.compile(r"/api/v1/files/.+"), None),
    # The pages check the session themselves: a visitor without one is sent to the login
    # form, not answered with JSON (megacity/api/web/site.py).
    AccessRule(None, re.compile(PAGE_PATHS), None),
    AccessRule("POST", re.compile(r"/api/v1/models/[^/]+/activate"), SCOPE_ADMIN),
    AccessRule(None, re.compile(r"/api/v1/admin(/.*)?"), SCOPE_ADMIN),
    AccessRule("GET", re.compile(r"/api/v1/ai/bias-report"), SCOPE_ADMIN),
    AccessRule(None, re.compile(r".*", re.DOTALL), SCOPE_USE),
)


class AuthMiddleware:
    """Authenticates and authorises each HTTP request before it reaches a route."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator | None,
        *,
        enabled: bool,
        default_zone: str | None,
        rules: Sequence[AccessRule] = DEFAULT_RULES,
        sessions: Sessions | None = None,
    ) -> None:
        if enabled and authenticator is None:
            raise ValueError("auth is enabled but no authenticator was given")
        self.app = app
        self.authenticator = authenticator
        self.sessions = sessions  # a page's own API calls carry the session cookie
        self.enabled = enabled
        self.default_zone = default_zone
        self.rules = tuple(rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        required = self._required_scope(method, scope["path"])
        if required is None:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if not self.enabled or self.authenticator is None:
            state["principal"] = ANONYMOUS
            await self.app(scope, receive, send)
            return
        refusal = await self._admit(scope, state, required)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await refusal(scope, receive, send)

    def _required_scope(self, method: str, path: str) -> str | None:
        for rule in self.rules:
            if rule.matches(method, path):
                return rule.scope
        return SCOPE_USE  # rules without a catch-all still never leave a path open

    async def _admit(
        self, scope: Scope, state: dict[str, object], required: str
    ) -> Response | None:
        """None when the request may go on (state filled in), else the refusal to send."""
        assert self.authenticator is not None
        headers = _headers(scope)
        authorization = _first(headers, b"authorization")
        api_key = _first(headers, b"x-api-key")
        if authorization is None and api_key is None and self.sessions is not None:
            credential, csrf_ok = self.sessions.credential_for_api(scope)
            if not csrf_ok:
                return _envelope(CsrfFailed("the X-CSRF-Token header is missing or stale"))
            authorization = f"Bearer {credential}" if credential else None
        try:
            principal = await self.authenticator.authenticate(authorization, api_key)
        except AuthError as exc:
            self._refused(scope, state, exc.code, str(exc), None)
            return _envelope(exc)
        except MegaCityError as exc:  # the credential store is down: 503, never a pass
            return _envelope(exc)
        problem = _authorise(principal, required, headers, self.default_zone)
        if problem is not None:
            self._refused(scope, state, problem.code, problem.message, principal)
            return _envelope(problem)
        state["principal"] = principal
        state["user_id"] = _user_id(principal, headers)
        return None

    @staticmethod
    def _refused(
        scope: Scope, state: dict[str, object], code: str, reason: str, who: Principal | None
    ) -> None:
        """One INFO line saying why (never the credential itself)."""
        log.info(
            "request refused",
            extra={
                "request_id": state.get("request_id"),
                "method": scope.get("method"),
                "path": scope["path"],
                "code": code,
                "reason": reason,
                "subject": who.subject if who else None,
                "credential": who.credential_id if who else None,
            },
        )


def _authorise(
    principal: Principal, required: str, headers: dict[bytes, list[str]], default_zone: str | None
) -> Forbidden | None:
    """The 403 for a principal that lacks the scope, the zone, or is someone else."""
    if not principal.has_scope(required):
        challenge = f'{REALM}, error="insufficient_scope", scope="{required}"'
        return Forbidden(
            f"this credential lacks the {required} scope",
            code="insufficient_scope",
            headers={"WWW-Authenticate": challenge},
        )
    zones: list[str | None] = [z or default_zone for z in headers.get(b"x-zone", ())]
    if not all(principal.allows_zone(z) for z in zones or [default_zone]):
        return Forbidden(
            "this credential may not use this zone", code="zone_forbidden", param="X-Zone"
        )
    users = [u for u in headers.get(b"x-user-id", ()) if u]
    if principal.kind == "token" and any(u != principal.subject for u in users):
        return Forbidden(
            "X-User-Id does not match the token's subject", code="user_mismatch", param="X-User-Id"
        )
    if principal.kind == "api_key" and len(set(users)) > 1:
        return Forbidden("X-User-Id is given twice", code="user_mismatch", param="X-User-Id")
    return None


def _user_id(principal: Principal, headers: dict[bytes, list[str]]) -> str:
    """A token acts for its subject; an API key for the X-User-Id it sends, else itself."""
    if principal.kind == "api_key":
        given = _first(headers, b"x-user-id")
        if given:
            return given
    return principal.subject


def _headers(scope: Scope) -> dict[bytes, list[str]]:
    """The few headers the guard reads, every value of each (a repeated one is checked too)."""
    wanted = (b"authorization", b"x-api-key", b"x-zone", b"x-user-id")
    found: dict[bytes, list[str]] = {}
    for name, value in scope["headers"]:
        if name in wanted:
            found.setdefault(name, []).append(value.decode("latin-1").strip())
    return found


def _first(headers: dict[bytes, list[str]], name: bytes) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _envelope(exc: MegaCityError) -> Response:
    return error_response(
        exc.status, exc.message, exc.type, exc.code, exc.param, headers=exc.headers
    )


def jwks_router(keys: KeySet | None) -> APIRouter:
    """GET /.well-known/jwks.json: the public keys this router trusts (none when auth is off)."""
    router = APIRouter(tags=["auth"])

    @router.get(JWKS_PATH, summary="Public keys that sign access tokens (JWK Set)")
    async def jwks() -> Response:
        body = keys.jwks() if keys is not None else {"keys": []}
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})

    return router

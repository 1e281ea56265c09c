"""One error envelope for every 4xx/5xx: {"error": {"message", "type", "code", "param"}}."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from megacity.api.context import ClientGone
from megacity.errors import MegaCityError

log = logging.getLogger("megacity.api")

_STATUS_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error_response(
    status: int,
    message: str,
    type_: str,
    code: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": type_, "code": code, "param": param}}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """A one-line message and the offending parameter from a pydantic error list."""
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    where = f"{param}: " if param else ""
    return f"{where}{first.get('msg', 'invalid')}{more}", param


def domain_response(exc: MegaCityError) -> Response:
    """The envelope of a domain error (4xx/5xx with its code and headers)."""
    body = orjson.dumps(exc.envelope())
    return Response(body, exc.status, exc.headers, media_type="application/json")


def client_gone_response(exc: ClientGone) -> Response:
    # Nobody reads this answer; 499 (as nginx logs it) keeps the metrics honest.
    return error_response(499, str(exc), "invalid_request_error", "client_closed_request")


def unexpected_response(path: str) -> Response:
    """500 in the envelope; the traceback goes to the log (call inside `except`)."""
    log.exception("unhandled error", extra={"path": path})
    return error_response(500, "internal error", "server_error", "internal_error")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the envelope."""

    @app.exception_handler(MegaCityError)
    async def _domain(_: Request, exc: MegaCityError) -> Response:
        return domain_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        message, param = validation_message(exc)
        return error_response(400, message, "invalid_request_error", "invalid_request", param)

    @app.exception_handler(ClientGone)
    async def _gone(_: Request, exc: ClientGone) -> Response:
        return client_gone_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        type_ = _STATUS_TYPES.get(exc.status_code, "invalid_request_error")
        if exc.status_code >= 500:
            type_ = "server_error"
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        return error_response(
            exc.status_code, str(exc.detail), type_, code, headers=dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return unexpected_response(request.url.path)

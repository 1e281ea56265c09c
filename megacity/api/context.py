"""Reading a request: the X-* routing headers, a request id, and a bounded JSON body."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Coroutine
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from megacity.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from megacity.routing.context import RequestContext

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")


def request_id(request: Request) -> str:
    """The id the middleware gave this request (the client's X-Request-Id when safe)."""
    rid = request.scope.get("state", {}).get("request_id")
    return str(rid) if rid else os.urandom(8).hex()


_ROUTING_HEADERS = frozenset(
    (b"x-zone", b"x-locale", b"x-user-id", b"x-region", b"x-prompt-strategy", b"x-session-id")
)


def _routing_headers(request: Request) -> dict[str, str]:
    """The routing headers' first values, in one pass over the raw headers (the request's
    Headers would scan them again, and raise inside, for each header looked up)."""
    found: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        if name in _ROUTING_HEADERS:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


def _header(headers: dict[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None or value == "":
        return None
    if not _SAFE_VALUE.match(value):
        raise BadRequest(f"header {name} has an invalid value", code="invalid_header", param=name)
    return value


def routing_context(request: Request) -> RequestContext:
    """X-Zone, X-Locale, the user, X-Region and X-Prompt-Strategy as a RequestContext.

    The user is the one authentication established (a token's subject, or the X-User-Id
    a service API key acts for); only with auth off is a bare X-User-Id taken on trust.
    """
    user = request.scope.get("state", {}).get("user_id")
    if user is not None and not _SAFE_VALUE.match(user):
        raise BadRequest(
            "the user id has an invalid value", code="invalid_header", param="X-User-Id"
        )
    headers = _routing_headers(request)
    return RequestContext(
        request_id=request_id(request),
        zone=_header(headers, "x-zone"),
        locale=_header(headers, "x-locale"),
        user_id=user if user is not None else _header(headers, "x-user-id"),
        region=_header(headers, "x-region"),
        strategy=_header(headers, "x-prompt-strategy"),
        session_id=_header(headers, "x-session-id"),
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("invalid Content-Length", code="invalid_header")
        if int(declared) > limit:
            raise PayloadTooLarge(f"request body over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """A bounded body parsed as a JSON object; 400/413/415 in the envelope otherwise."""
    ctype = request.headers.get("content-type", "application/json").split(";", 1)[0].strip()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"expected application/json, got {ctype!r}")
    raw = await read_body(request, limit)
    if not raw:
        raise BadRequest("request body is empty; expected a JSON object", code="invalid_json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object", code="invalid_json")
    return data


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: dict[str, Any]) -> M:
    """Validate a parsed body against its schema; 400 naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        where = f"{param}: " if param else ""
        raise BadRequest(f"{where}{first['msg']}{more}", param=param) from None


T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready; the upstream work was cancelled."""


async def until_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Run `work` (the body is already read), cancelling it if the client disconnects first.

    The work runs in the request's own task; a watcher task waits for the disconnect and
    cancels the request's task then (one task per request, not two and an asyncio.wait).
    """
    task = asyncio.current_task()
    if task is None:  # not in a task (never under a server): nothing could cancel it
        return await work
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _disconnected(request)
        gone = True
        task.cancel()  # closes the upstream connection: the engine stops generating

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            raise ClientGone("client disconnected") from None
        raise
    finally:
        watcher.cancel()
        if gone:
            task.uncancel()  # the cancellation was ours, and it is handled here


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def user_key(request: Request) -> str:
    """The keyed hash of the requesting user (what logs and limit buckets hold)."""
    state = request.scope.setdefault("state", {})
    key = state.get("user_key")
    if key is None:
        key = request.app.state.services.hasher(routing_context(request).user_id)
        state["user_key"] = key
    return str(key)


def user_named(request: Request) -> bool:
    """False when the caller acts for people it does not name (api/limits.py `actor`)."""
    return bool(request.scope.get("state", {}).get("user_named", True))

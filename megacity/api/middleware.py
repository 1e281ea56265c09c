"""Pure ASGI middleware: request id, request metrics and one JSON log line per request."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from megacity.observability.metrics import Metrics
from megacity.observability.rolling import NO_GROUP, RollingStats
from megacity.routing.tokens import find_usage

log = logging.getLogger("megacity.access")
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


class RequestMiddleware:
    """Times every HTTP request to its last byte; handlers put labels in scope['state']['route'].

    The region of the node that served (`regions`: node name → region) goes into the
    X-MegaCity-Region header and the log line, for every engine alike. The rolling
    aggregates also count the request under its caller's user group (a token's `group`
    claim) with the LLM tokens the answer's `usage` reports (read from its last two body
    messages: a whole answer, or a stream's final events).
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        *,
        request_log: bool = True,
        rolling: RollingStats | None = None,
        regions: dict[str, str] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.request_log = request_log
        self.rolling = rolling
        self.regions = {node: region.encode() for node, region in (regions or {}).items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["started"] = started
        status = 500
        stream = False
        first_byte = 0.0  # when a stream's first event went out: its time to first token
        rid_header = (b"x-request-id", rid.encode())
        tail = (b"", b"")  # the last two body messages: where an answer's usage is

        async def send_with_id(message: Message) -> None:
            nonlocal status, stream, first_byte, tail
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                stream = any(
                    n == b"content-type" and v.startswith(b"text/event-stream") for n, v in headers
                )
                extra = [rid_header]
                route = state.get("route")
                if route is not None and (region := self.regions.get(route[2])) is not None:
                    extra.append((b"x-megacity-region", region))
                message["headers"] = [*headers, *extra]
            else:
                body = message.get("body")
                if body:
                    tail = (tail[1], body)
                    if stream and not first_byte:
                        first_byte = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            ttft = first_byte - started if first_byte else None
            seconds = time.perf_counter() - started
            self._record(scope, state, status, seconds, rid, ttft, tail)

    def _record(
        self,
        scope: Scope,
        state: dict[str, Any],
        status: int,
        seconds: float,
        rid: str,
        ttft: float | None = None,
        tail: tuple[bytes, bytes] = (b"", b""),
    ) -> None:
        route = state.get("route")
        if route is None:
            return  # health, metrics, docs: not counted as AI requests
        engine, model, node, zone = route
        self.metrics.observe_request((engine, model, node, zone, str(status)), seconds)
        if self.rolling is not None:
            principal = state.get("principal")
            group = getattr(principal, "group", None) or NO_GROUP
            tokens = 0
            if engine == "llm" and status == 200:
                usage = find_usage(tail[1]) or (find_usage(tail[0] + tail[1]) if tail[0] else None)
                if usage is not None:
                    tokens = max(0, usage.prompt_tokens) + max(0, usage.completion_tokens)
            self.rolling.record(engine, model, node, zone, status, seconds, ttft, group, tokens)
        if self.request_log:
            log.info(
                "request",
                extra={
                    "request_id": rid,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "engine": engine,
                    "model": model,
                    "node": node,
                    "region": self.regions.get(node, b"").decode() or None,
                    "zone": zone,
                    "tier": state.get("tier"),
                },
            )


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode() if _SAFE_ID.match(value) else os.urandom(8).hex()
    return os.urandom(8).hex()

"""The OpenAI hot routes as raw ASGI: /v1/chat/completions and /v1/completions.

Every request already passes the pure-ASGI request, auth and limit middlewares; what the
framework adds after them — matching some forty routes, the endpoint machinery, two
exception middlewares — is work a chat completion does not need. This middleware, the
innermost one, answers the two routes itself with the same handler (`openai.route_llm`)
and the same error envelope; every other request goes on to FastAPI, and the two routes
stay registered there for the OpenAPI document. A streamed answer is relayed without
Starlette's per-response task group (`relay`).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from megacity.api.context import ClientGone
from megacity.api.errors import client_gone_response, domain_response, unexpected_response
from megacity.api.openai import route_llm
from megacity.api.services import Services
from megacity.errors import MegaCityError

ROUTES = {"/v1/chat/completions": True, "/v1/completions": False}  # path → chat?


class OpenAIFastPath:
    """Pure ASGI: POST on the two LLM routes is handled here, anything else passes on."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chat = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if chat is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            response = await route_llm(request, self.services, chat=chat)
        except MegaCityError as exc:
            response = domain_response(exc)
        except ClientGone as exc:
            response = client_gone_response(exc)
        except Exception:
            response = unexpected_response(scope["path"])
        if isinstance(response, StreamingResponse):
            await relay(response, receive, send)
        else:
            await response(scope, receive, send)


async def relay(response: StreamingResponse, receive: Receive, send: Send) -> None:
    """Send a stream as Starlette would (its own headers and chunks), without its task group.

    Starlette runs the stream and a disconnect listener as two tasks of an anyio task
    group; here the stream runs in the request's own task and one watcher cancels it
    when the client goes — the relay's `finally` then closes the upstream connection,
    which makes the engine stop generating.
    """
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        await response.stream_response(send)
    except asyncio.CancelledError:
        if not gone:
            raise  # cancelled from outside (shutdown): not ours to swallow
    finally:
        watcher.cancel()
        if gone:
            task.uncancel()

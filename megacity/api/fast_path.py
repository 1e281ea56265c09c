"""The OpenAI hot routes as raw ASGI: /v1/chat/completions and /v1/completions.

Every request already passes the pure-ASGI request, auth and limit middlewares; what the
framework adds after them — matching some forty routes, the endpoint machinery, two
exception middlewares — is work a chat completion does not need. This middleware, the
innermost one, answers the two routes itself with the same handler (`openai.route_llm`)
and the same error envelope; every other request goes on to FastAPI, and the two routes
stay registered there for the OpenAPI document.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
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
        await response(scope, receive, send)

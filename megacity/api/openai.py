"""OpenAI-compatible endpoints: /v1/chat/completions, /v1/completions, /v1/models."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from megacity.api.context import read_json, routing_context, until_disconnect, validate
from megacity.api.responses import answer_response
from megacity.api.safety import caller
from megacity.api.schemas import (
    ERROR_RESPONSES,
    ChatCompletionRequest,
    CompletionRequest,
    ModelCard,
    ModelList,
)
from megacity.api.services import Services
from megacity.config.topology import Engine
from megacity.routing.selector import AUTO

router = APIRouter(tags=["openai"])

# The handlers read the body themselves: client fields the router does not know pass
# through to the engine untouched, and the schemas below are what OpenAPI shows.
CHAT_BODY = ChatCompletionRequest
COMPLETION_BODY = CompletionRequest


@router.post("/v1/chat/completions", responses=ERROR_RESPONSES, summary="Chat completion")
async def chat_completions(request: Request) -> Response:
    # Served by megacity.api.fast_path before the framework's router; this route is what
    # the OpenAPI document shows, and the fallback if the fast path is not installed.
    return await route_llm(request, request.app.state.services, chat=True)


@router.post("/v1/completions", responses=ERROR_RESPONSES, summary="Text completion")
async def completions(request: Request) -> Response:
    return await route_llm(request, request.app.state.services, chat=False)


async def route_llm(request: Request, services: Services, *, chat: bool) -> Response:
    """Read and validate the body, then route it; the raw dict is what goes upstream."""
    schema: type[BaseModel] = ChatCompletionRequest if chat else CompletionRequest
    state = request.scope["state"]
    state["route"] = ("llm", "", "", "")
    ctx = routing_context(request)
    payload = await read_json(request, services.settings.max_body_bytes)
    validate(schema, payload)
    guarded = await services.guard.before(caller(request, ctx), payload, chat=chat)
    route = services.llm.chat if chat else services.llm.complete
    work = route(ctx, payload, state["started"])
    try:
        if payload.get("stream"):
            answer = await work  # a stream notices the client leaving by itself
        else:
            answer = await until_disconnect(request, work)
    except BaseException:
        await services.guard.refund(guarded)
        raise
    return answer_response(request, await services.guard.after(guarded, answer))


@router.get("/v1/models", response_model=ModelList, summary="Models and aliases")
async def list_models(request: Request) -> ModelList:
    services: Services = request.app.state.services
    created = int(services.started_at)
    cards = [ModelCard(id=AUTO, created=created, root=AUTO)]
    for name in [*services.registry.names(Engine.LLM), *services.registry.names(Engine.VISION)]:
        model = services.registry.model(name)
        cards.append(
            ModelCard(id=name, created=created, root=services.registry.resolve(name).served_as)
        )
        cards.extend(ModelCard(id=a, created=created, parent=name) for a in model.aliases)
    return ModelList(data=cards)

"""POST /api/v1/tutor/{strategy}: typed fields → the strategy's prompt → the LLM route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from megacity.api.context import read_json, routing_context, user_key, user_named, validate
from megacity.api.responses import answer_response
from megacity.api.schemas import ERROR_RESPONSES, TutorOptions
from megacity.api.services import Services
from megacity.pipelines.guard import Caller
from megacity.prompts.library import Strategy, StrategyLibrary

Handler = Callable[[Request], Awaitable[Response]]


def build_router(strategies: StrategyLibrary) -> APIRouter:
    """One typed route per strategy file, and a catch-all that answers 404 for the rest."""
    router = APIRouter(tags=["tutor"])
    for name in strategies.names():
        strategy = strategies.get(name)
        model = strategy.request_model(TutorOptions)
        router.add_api_route(
            f"/api/v1/tutor/{name}",
            _handler(strategy, model),
            methods=["POST"],
            summary=strategy.description or name,
            responses=ERROR_RESPONSES,
            openapi_extra=_body_schema(model),
        )

    @router.post("/api/v1/tutor/{strategy}", include_in_schema=False)
    async def unknown(strategy: str, request: Request) -> Response:
        services: Services = request.app.state.services
        services.strategies.get(strategy)  # raises the 404 envelope
        raise AssertionError("every known strategy has its own route")

    return router


def _handler(strategy: Strategy, model: type[BaseModel]) -> Handler:
    options = set(TutorOptions.model_fields)

    async def tutor(request: Request) -> Response:
        services: Services = request.app.state.services
        state = request.scope["state"]
        state["route"] = ("llm", "", "", "")
        ctx = routing_context(request)
        data = await read_json(request, services.settings.max_body_bytes)
        body = validate(model, data)
        values = body.model_dump(exclude_none=True)
        zone_id, zone = services.selector.zone(ctx)
        locale = services.selector.locale(ctx, zone)
        payload: dict[str, Any] = {
            "model": values["model"],
            "stream": values["stream"],
            "messages": strategy.render(
                {k: v for k, v in values.items() if k not in options}, locale
            ),
        }
        for key in ("max_tokens", "temperature"):
            if key in values:
                payload[key] = values[key]
        guarded = await services.guard.before(
            Caller(user_key(request), zone_id, zone.safety, locale, user_named(request)),
            payload,
            chat=True,
        )
        try:
            answer = await services.llm.chat(
                ctx, payload, state["started"], tier_floor=strategy.tier_floor
            )
        except BaseException:
            await services.guard.refund(guarded)
            raise
        response = answer_response(request, await services.guard.after(guarded, answer))
        response.headers["X-MegaCity-Strategy"] = strategy.name
        return response

    tutor.__name__ = f"tutor_{strategy.name}"
    return tutor


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}

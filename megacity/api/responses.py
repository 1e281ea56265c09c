"""Turning an upstream answer into an HTTP response that carries the routing decision."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from megacity.routing.dispatch import Answer
from megacity.routing.selector import Decision


def decision_headers(answer: Answer) -> dict[str, str]:
    headers = route_headers(answer.decision, answer.node, answer.route_ms)
    if answer.route:
        headers["X-MegaCity-Route"] = answer.route
    return headers


def route_headers(d: Decision, node: str, route_ms: float) -> dict[str, str]:
    """X-MegaCity-* headers: the model, node, tier, zone and locale chosen, and how fast."""
    headers = {
        "X-MegaCity-Model": d.model.name,
        "X-MegaCity-Node": node,
        "X-MegaCity-Tier": d.tier.value if d.tier else "",
        "X-MegaCity-Route-Ms": f"{route_ms:.3f}",
        "X-MegaCity-Zone": d.zone,
        "X-MegaCity-Locale": d.locale,
    }
    if d.model.version:
        headers["X-MegaCity-Version"] = d.model.version
    return headers


def answer_response(request: Request, answer: Answer, engine: str = "llm") -> Response:
    """The client's response; labels the request for metrics and the access log."""
    d = answer.decision
    state = request.scope["state"]
    state["route"] = (engine, d.model.name, answer.node, d.zone)
    state["tier"] = d.tier.value if d.tier else None
    headers = decision_headers(answer)
    if answer.chunks is not None:
        headers["Cache-Control"] = "no-cache"
        headers["X-Accel-Buffering"] = "no"
        return StreamingResponse(
            answer.chunks, answer.status, headers, media_type="text/event-stream"
        )
    return Response(answer.body, answer.status, headers, media_type=answer.content_type)

"""Operations: /healthz (alive), /readyz (every engine has a reachable node), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from megacity.api.services import Services

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    engines: dict[str, dict[str, object]] = {}
    for state in services.balancer.nodes.values():
        entry = engines.setdefault(state.node.engine.value, {"ready": False, "nodes": {}})
        alive = state.alive()
        engine = (
            services.speech_engines.get(state.name)
            or services.pose_engines.get(state.name)
            or services.face_engines.get(state.name)
        )
        if engine is not None and engine.failure is not None:
            alive = False  # in-process model failed to load (retried after a while)
        entry["ready"] = bool(entry["ready"]) or alive
        entry["nodes"][state.name] = {  # type: ignore[index]
            "healthy": state.healthy,
            "breaker": state.breaker.state.name.lower(),
            "in_flight": state.in_flight,
            "reason": state.health_reason,
        }
    ready = all(e["ready"] for e in engines.values())
    return JSONResponse({"ready": ready, "engines": engines}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4")

"""What every engine node (speech, pose, …) is besides its work: the app, /health, /metrics.

The model loads in the background at start (unless ``warmup`` is off) and the engine is
closed at shutdown. ``/health`` is 503 while the model loads or when it cannot be
loaded, so the router's health monitor keeps requests away; ``/metrics`` reports the
requests running and waiting, which the router reads to balance across nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from starlette.responses import Response

import megacity
from megacity.api import errors


class NodeEngine(Protocol):
    """The state an in-process engine exposes to its node."""

    @property
    def loaded(self) -> bool: ...
    @property
    def failure(self) -> str | None: ...
    @property
    def running(self) -> int: ...
    @property
    def waiting(self) -> int: ...
    async def warm_up(self) -> None: ...
    def close(self) -> None: ...


def engine_node_app(title: str, engine: NodeEngine, model: str, warmup: bool) -> FastAPI:
    """A node app for `engine` with the error envelope, /health and /metrics; add the work route."""
    tasks: list[asyncio.Task[None]] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warmup:
            tasks.append(asyncio.create_task(engine.warm_up()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            engine.close()

    app = FastAPI(
        title=title,
        version=megacity.__version__,
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    app.state.engine = engine
    errors.install(app)
    add_health_and_metrics(app, engine, model, warmup)
    return app


def add_health_and_metrics(app: FastAPI, engine: NodeEngine, model: str, warmup: bool) -> None:
    """Register GET /health and GET /metrics for `engine` serving `model`."""

    @app.get("/health")
    async def health() -> Response:
        if engine.loaded:
            return ORJSONResponse({"status": "ok", "model": model})
        if engine.failure is not None:
            return ORJSONResponse({"status": "down", "model": model, "reason": engine.failure}, 503)
        if warmup:
            return ORJSONResponse({"status": "loading", "model": model}, 503)
        return ORJSONResponse({"status": "ok", "model": model, "loaded": False})

    @app.get("/metrics")
    async def metrics() -> Response:
        text = (
            "# TYPE megacity_engine_requests_running gauge\n"
            f"megacity_engine_requests_running {float(engine.running)}\n"
            "# TYPE megacity_engine_requests_waiting gauge\n"
            f"megacity_engine_requests_waiting {float(engine.waiting)}\n"
            "# TYPE megacity_engine_model_loaded gauge\n"
            f"megacity_engine_model_loaded {1.0 if engine.loaded else 0.0}\n"
        )
        return Response(text, media_type="text/plain; version=0.0.4")

"""create_app(settings): the FastAPI application of the AI Router."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import ORJSONResponse as _JSON
from pydantic import BaseModel

import megacity
from megacity.api import (
    admin,
    blocks,
    consent,
    dance,
    errors,
    feedback,
    files,
    generation,
    jobs,
    multimodal,
    openai,
    ops,
    speech,
    tutor,
    voice,
    web,
)
from megacity.api.auth import AuthMiddleware, jwks_router
from megacity.api.fast_path import OpenAIFastPath
from megacity.api.limits import LimitMiddleware
from megacity.api.middleware import RequestMiddleware
from megacity.api.openapi_doc import fill_model_enums, hoist_defs
from megacity.api.services import Services
from megacity.config.settings import Settings
from megacity.config.topology import Engine
from megacity.routing.selector import AUTO


def create_app(settings: Settings) -> FastAPI:
    """Build the router app; nothing global, so tests can build as many as they like."""
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await services.start()
        if settings.gc_freeze:
            gc.collect()
            gc.freeze()  # start-up's objects are permanent: collections skip them
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="MegaCity AI Router",
        version=megacity.__version__,
        lifespan=lifespan,
        default_response_class=_JSON,
        docs_url=None,  # served by the pages, from the package (megacity/api/web)
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    app.include_router(openai.router)
    app.include_router(speech.router)
    app.include_router(voice.router)
    app.include_router(dance.router)
    app.include_router(multimodal.router)
    app.include_router(generation.router)
    app.include_router(files.router)
    app.include_router(jobs.router)
    app.include_router(feedback.router)
    app.include_router(consent.router)
    app.include_router(tutor.build_router(services.strategies))
    app.include_router(admin.router)
    app.include_router(blocks.router)
    app.include_router(ops.router)
    app.include_router(jwks_router(services.auth_keys))
    sessions = web.build_sessions(services)
    web.install(app, services, sessions)
    default_zone = services.topology.default_zone
    app.add_middleware(OpenAIFastPath, services=services)  # the innermost: after the limits
    app.add_middleware(
        LimitMiddleware,
        limiter=services.limiter,
        abuse=services.abuse,
        policy=settings.limits,
        hasher=services.hasher,
        default_zone=default_zone,
        metrics=services.metrics,
    )
    app.add_middleware(
        AuthMiddleware,
        authenticator=services.authenticator,
        enabled=settings.auth_enabled,
        default_zone=default_zone,
        sessions=sessions,
    )
    app.add_middleware(  # added last: the outermost, so refusals are timed and get an id
        RequestMiddleware,
        metrics=services.metrics,
        request_log=settings.request_log,
        rolling=services.rolling,
        regions={n.name: n.region for n in services.topology.nodes},
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """One worker of `megacity serve --workers N`: settings from the environment."""
    from megacity.observability.logging import configure_logging

    settings = Settings.load()
    configure_logging(settings.log_level)
    return create_app(settings)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the chat/completion bodies the handlers parse themselves."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    bodies: dict[str, type[BaseModel]] = {
        "/v1/chat/completions": openai.CHAT_BODY,
        "/v1/completions": openai.COMPLETION_BODY,
        **generation.REQUEST_BODIES,
    }
    for path, model in bodies.items():
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
        schema["paths"][path]["post"]["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    hoist_defs(schema)
    fill_model_enums(schema, _model_names(app.state.services))
    app.openapi_schema = schema
    return schema


def _model_names(services: Services) -> dict[str, list[str]]:
    """Per engine: `auto`, then every model name and alias the registry knows."""
    names: dict[str, list[str]] = {}
    for engine in Engine:
        found = [AUTO]
        for name in services.registry.names(engine):
            found += [name, *services.registry.model(name).aliases]
        names[engine.value] = found
    return names

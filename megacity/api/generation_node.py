"""Remote generation nodes: `megacity engine image` and `megacity engine tts` over HTTP.

An image node serves OpenAI's ``POST /v1/images/generations`` (``b64_json`` only: a node
has no object store), a TTS node ``POST /v1/audio/speech`` (the encoded audio, with
X-MegaCity-* headers for the router). Both watermark what they make, exactly as the
router's in-process engines do (engines/generation.py), and have the usual ``/health``
(503 until the model is loaded when warm-up is on) and ``/metrics``.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse
from starlette.responses import Response

from megacity.api.context import read_json, validate
from megacity.api.engine_node import engine_node_app
from megacity.api.generation_schemas import ImageGenerationBody, SpeechBody, check_text_length
from megacity.api.schemas import ERROR_RESPONSES
from megacity.config.settings import Settings
from megacity.engines.generation import render_images, render_speech, watermark_key
from megacity.engines.generation_http import IMAGES_PATH, SPEECH_PATH, speech_headers
from megacity.engines.image import ImageEngine, ImageEngineConfig
from megacity.engines.tts import TTSEngine, TTSEngineConfig
from megacity.errors import BadRequest

_MAX_BODY = 1024 * 1024


def create_image_node(settings: Settings, config: ImageEngineConfig, name: str) -> FastAPI:
    """An image node app around an in-process ImageEngine."""
    engine = ImageEngine(config, name)
    app = engine_node_app(f"MegaCity image node {name}", engine, config.model, config.warmup)
    key = watermark_key(settings)

    @app.post(IMAGES_PATH, responses=ERROR_RESPONSES, summary="Generate images (b64_json)")
    async def generate(request: Request) -> Response:
        body = validate(ImageGenerationBody, await read_json(request, _MAX_BODY))
        if body.response_format != "b64_json":
            raise BadRequest(
                "a generation node answers b64_json only",
                code="invalid_value",
                param="response_format",
            )
        batch = await render_images(engine, body.image_request(), watermark_key=key)
        data: list[dict[str, Any]] = [
            {
                "b64_json": base64.b64encode(image.png).decode(),
                "seed": image.seed,
                "width": image.width,
                "height": image.height,
            }
            for image in batch.images
        ]
        answer = {
            "created": int(time.time()),
            "model": batch.model,
            "steps": batch.steps,
            "data": data,
        }
        return ORJSONResponse(answer, headers={"X-MegaCity-Node": name})

    return app


def create_tts_node(settings: Settings, config: TTSEngineConfig, name: str) -> FastAPI:
    """A TTS node app around an in-process TTSEngine."""
    engine = TTSEngine(config, name)
    app = engine_node_app(f"MegaCity TTS node {name}", engine, config.model, config.warmup)
    key = watermark_key(settings)

    @app.post(SPEECH_PATH, responses=ERROR_RESPONSES, summary="Text to speech (OpenAI-compatible)")
    async def speech(request: Request) -> Response:
        body = validate(SpeechBody, await read_json(request, _MAX_BODY))
        check_text_length(body.input, settings.tts_max_chars, "input")
        out = await render_speech(engine, body.speech_request(), watermark_key=key)
        return Response(out.audio, media_type=out.content_type, headers=speech_headers(out, name))

    return app

"""A remote speech node (`megacity engine speech --port 8101`): the in-process engine over HTTP.

It serves the same OpenAI `/v1/audio/transcriptions` as the router, with the same form
parsing, audio decoding, limits, error envelope and response formats, plus `/health`
(503 until the model is loaded, or when it cannot be) and `/metrics` (requests running
and waiting, read by the router's health monitor to balance across nodes).
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from starlette.responses import Response

from megacity.api.engine_node import engine_node_app
from megacity.api.schemas import AUDIO_ERROR_RESPONSES
from megacity.api.transcription import parse_transcription, read_upload_form, render
from megacity.config.settings import Settings
from megacity.engines.audio import decode_audio
from megacity.engines.speech import SpeechEngine, SpeechEngineConfig


def create_speech_node(settings: Settings, config: SpeechEngineConfig, name: str) -> FastAPI:
    """The node app; the model loads in the background at start unless `preload` is off."""
    engine = SpeechEngine(config, name)
    app = engine_node_app(f"MegaCity speech node {name}", engine, config.model, config.warmup)

    @app.post(
        "/v1/audio/transcriptions",
        responses=AUDIO_ERROR_RESPONSES,
        summary="Transcribe audio (OpenAI-compatible)",
    )
    async def transcriptions(request: Request) -> Response:
        form = await read_upload_form(request, settings.speech_max_upload_bytes)
        req = parse_transcription(form)
        samples = await asyncio.to_thread(
            decode_audio, req.upload.data, max_seconds=settings.speech_max_audio_s
        )
        transcript = await engine.transcribe(samples, req.options)
        response = render(transcript, req)
        response.headers["X-MegaCity-Node"] = name
        return response

    return app

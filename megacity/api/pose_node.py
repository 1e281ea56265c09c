"""A remote pose node (`megacity engine pose --port 8102`): the in-process pose engine over HTTP.

``POST /v1/pose/extract`` takes a video (multipart ``file``) with the router's limits and
error codes and answers the keypoints as ``application/x-npz`` (``PoseExtraction.to_npz``);
``/health`` is 503 until the model is loaded (or when it cannot be) and ``/metrics``
reports the extractions running and waiting, which the router's health monitor reads to
balance across nodes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from megacity.api.engine_node import engine_node_app
from megacity.api.schemas import ERROR_RESPONSES
from megacity.api.transcription import audio_upload, read_upload_form
from megacity.config.settings import Settings
from megacity.engines.pose import PoseEngine, PoseEngineConfig
from megacity.engines.pose_http import EXTRACT_PATH, NPZ_TYPE

_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "model": {"type": "string"},
                    },
                }
            }
        },
    }
}


def create_pose_node(settings: Settings, config: PoseEngineConfig, name: str) -> FastAPI:
    """The node app; the model loads in the background at start unless `warmup` is off."""
    engine = PoseEngine(config, name)
    app = engine_node_app(f"MegaCity pose node {name}", engine, config.model_path, config.warmup)

    @app.post(
        EXTRACT_PATH,
        responses=ERROR_RESPONSES,
        summary="33 pose landmarks per sampled frame of a video (MediaPipe), as .npz",
        openapi_extra=_FORM,
    )
    async def extract(request: Request) -> Response:
        form = await read_upload_form(request, settings.dance_max_upload_bytes, "video")
        upload = audio_upload(form, "video")
        result = await engine.extract(upload.data, max_seconds=settings.dance_max_video_s)
        return Response(result.to_npz(), media_type=NPZ_TYPE, headers={"X-MegaCity-Node": name})

    return app

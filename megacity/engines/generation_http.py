"""Client for remote image and TTS nodes (`megacity engine image|tts`): OpenAI's JSON APIs.

An image node answers ``POST /v1/images/generations`` with ``response_format=b64_json``
plus MegaCity's extensions (steps, seed, negative_prompt; seeds come back per image); a
TTS node answers ``POST /v1/audio/speech`` with the encoded audio and X-MegaCity-*
headers naming the engine, voice and sample rate. The node watermarks what it makes
(engines/generation.py); the router stores it as it came.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from megacity.config.topology import Node
from megacity.engines.generation import ImageBatch, ImageOutput, SpeechOutput, SpeechRequest
from megacity.engines.image import ImageRequest
from megacity.engines.node_http import NodeClient
from megacity.engines.openai_http import UpstreamFailure

IMAGES_PATH = "/v1/images/generations"
SPEECH_PATH = "/v1/audio/speech"
_MAX_IMAGES_BODY = 256 * 1024 * 1024
_MAX_SPEECH_BODY = 128 * 1024 * 1024


class GenerationHTTPClient(NodeClient):
    """Sends image and speech requests to remote generation nodes."""

    async def images(
        self, node: Node, model: str, request: ImageRequest, request_id: str
    ) -> ImageBatch:
        """The node's images; UpstreamFailure when it fails, its 4xx as the client's error."""
        body: dict[str, object] = {
            "model": model,
            "prompt": request.prompt,
            "n": request.n,
            "size": f"{request.width}x{request.height}",
            "response_format": "b64_json",
            "negative_prompt": request.negative_prompt,
            "steps": request.steps,
            "seed": request.seed,
            "guidance_scale": request.guidance_scale,
        }
        raw, _ = await self.post_json(
            node, IMAGES_PATH, body, request_id=request_id, max_body=_MAX_IMAGES_BODY
        )
        try:
            data = orjson.loads(raw)
            images = tuple(_image(item) for item in data["data"])
            return ImageBatch(images, str(data.get("model") or model), int(data.get("steps") or 0))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
            raise UpstreamFailure(node.name, "status", "not an images answer") from None

    async def speech(
        self, node: Node, model: str, request: SpeechRequest, request_id: str
    ) -> SpeechOutput:
        """The node's encoded speech and its X-MegaCity-* description."""
        body: dict[str, object] = {
            "model": model,
            "input": request.text,
            "voice": request.voice,
            "style": request.style,
            "speed": request.speed,
            "seed": request.seed,
            "response_format": request.format,
        }
        audio, headers = await self.post_json(
            node, SPEECH_PATH, body, request_id=request_id, max_body=_MAX_SPEECH_BODY
        )
        try:
            return SpeechOutput(
                audio=audio,
                content_type=headers.get("content-type", "application/octet-stream"),
                format=request.format,
                sample_rate=int(headers["x-megacity-sample-rate"]),
                duration_s=float(headers["x-megacity-duration"]),
                engine=headers.get("x-megacity-engine", "unknown"),
                model=headers.get("x-megacity-model", model),
                voice=headers.get("x-megacity-voice", request.voice or ""),
                style=headers.get("x-megacity-style", request.style),
            )
        except (KeyError, ValueError):
            raise UpstreamFailure(
                node.name, "status", "speech answer without its headers"
            ) from None


def _image(item: Any) -> ImageOutput:
    png = base64.b64decode(item["b64_json"], validate=True)
    return ImageOutput(png, int(item["width"]), int(item["height"]), int(item["seed"]))


def speech_headers(out: SpeechOutput, node: str) -> dict[str, str]:
    """The X-MegaCity-* headers a TTS node sends with its audio (read back above)."""
    return {
        "X-MegaCity-Node": node,
        "X-MegaCity-Engine": out.engine,
        "X-MegaCity-Model": out.model,
        "X-MegaCity-Voice": out.voice,
        "X-MegaCity-Style": out.style,
        "X-MegaCity-Sample-Rate": str(out.sample_rate),
        "X-MegaCity-Duration": str(out.duration_s),
    }

"""Client for remote speech nodes: OpenAI's /v1/audio/transcriptions as multipart, over aiohttp.

The router always asks a node for verbose_json with word and segment timings and renders
the client's response format itself, so any OpenAI-compatible Whisper server can be a
node. A node's 4xx (bad audio) is the client's fault and is passed on unchanged; a
connection error, a timeout or a 5xx is an UpstreamFailure, which the router retries once
on another node.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from megacity.config.topology import Node
from megacity.engines.openai_http import UpstreamFailure
from megacity.engines.speech import TranscribeOptions, Transcript
from megacity.engines.upload import MediaUpload
from megacity.errors import from_envelope

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
_MAX_BODY = 16 * 1024 * 1024


AudioUpload = MediaUpload  # the speech engine's name for it


class SpeechHTTPClient:
    """Sends transcriptions to remote speech nodes over a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, *, connect_s: float, total_s: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(
            total=total_s, connect=connect_s, sock_connect=connect_s, sock_read=total_s
        )
        self._total_s = total_s

    async def transcribe(
        self,
        node: Node,
        model: str,
        upload: AudioUpload,
        options: TranscribeOptions,
        request_id: str,
    ) -> Transcript:
        """The node's transcript; UpstreamFailure when it fails, the node's 4xx as an error."""
        form = aiohttp.FormData()
        form.add_field(
            "file", upload.data, filename=upload.filename, content_type=upload.content_type
        )
        form.add_field("model", model)
        form.add_field("response_format", "verbose_json")
        form.add_field("timestamp_granularities[]", "segment")
        if options.word_timestamps:
            form.add_field("timestamp_granularities[]", "word")
        if options.language:
            form.add_field("language", options.language)
        if options.prompt:
            form.add_field("prompt", options.prompt)
        if options.temperature is not None:
            form.add_field("temperature", str(options.temperature))
        headers = {"X-Request-Id": request_id}
        if node.api_key:
            headers["Authorization"] = f"Bearer {node.api_key}"
        url = f"{node.url}{TRANSCRIPTIONS_PATH}"
        try:
            async with asyncio.timeout(self._total_s):
                async with self._session.post(
                    url, data=form, headers=headers, timeout=self._timeout
                ) as resp:
                    body = await resp.content.read(_MAX_BODY)
                    status = resp.status
        except TimeoutError:
            raise UpstreamFailure(node.name, "timeout", "no transcription in time") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamFailure(node.name, "connect", str(exc.os_error)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure(node.name, "disconnect", type(exc).__name__) from None
        if status >= 500:
            detail = body[:200].decode("utf-8", "replace")
            raise UpstreamFailure(node.name, "status", f"HTTP {status}: {detail}", status)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            if status >= 400:
                raise from_envelope(status, None) from None
            raise UpstreamFailure(node.name, "status", "answer is not JSON", status) from None
        if status >= 400:
            raise from_envelope(status, data)
        try:
            return Transcript.from_verbose_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamFailure(
                node.name, "status", f"malformed verbose_json: {exc!r}", status
            ) from None

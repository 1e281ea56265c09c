"""Client for remote speech nodes: OpenAI's /v1/audio/transcriptions as multipart, over aiohttp.

The router always asks a node for verbose_json with word and segment timings and renders
the client's response format itself, so any OpenAI-compatible Whisper server can be a
node. A node's 4xx (bad audio) is the client's fault and is passed on unchanged; a
connection error, a timeout or a 5xx is an UpstreamFailure, which the router retries once
on another node.
"""

from __future__ import annotations

import aiohttp
import orjson

from megacity.config.topology import Node
from megacity.engines.node_http import NodeClient
from megacity.engines.openai_http import UpstreamFailure
from megacity.engines.speech import TranscribeOptions, Transcript
from megacity.engines.upload import MediaUpload

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
_MAX_BODY = 16 * 1024 * 1024


AudioUpload = MediaUpload  # the speech engine's name for it


class SpeechHTTPClient(NodeClient):
    """Sends transcriptions to remote speech nodes over a shared aiohttp session."""

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
        body = await self.post_form(
            node, TRANSCRIPTIONS_PATH, form, request_id=request_id, max_body=_MAX_BODY
        )
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamFailure(node.name, "status", "answer is not JSON", 200) from None
        try:
            return Transcript.from_verbose_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamFailure(
                node.name, "status", f"malformed verbose_json: {exc!r}", 200
            ) from None

"""Client for remote pose nodes: a video in (multipart), keypoints out (``.npz``), over aiohttp.

``POST {node}/v1/pose/extract`` with the video as ``file`` (and ``model``)
answers ``application/x-npz``: the PoseExtraction's arrays, validated again here because
they come over the network. A node's 4xx (a bad video) is the client's fault and is passed
on unchanged; a connection error, a timeout, a 5xx or a malformed answer is an
UpstreamFailure, which the router retries once on another node.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from megacity.config.topology import Node
from megacity.engines.openai_http import UpstreamFailure
from megacity.engines.pose import PoseExtraction
from megacity.engines.upload import MediaUpload
from megacity.errors import from_envelope

EXTRACT_PATH = "/v1/pose/extract"
NPZ_TYPE = "application/x-npz"
# 10,800 frames × 33 × 4 float32 plus timestamps: ~5.8 MB; leave room for the container.
_MAX_BODY = 32 * 1024 * 1024

__all__ = ["EXTRACT_PATH", "NPZ_TYPE", "MediaUpload", "PoseHTTPClient"]


class PoseHTTPClient:
    """Sends extractions to remote pose nodes over a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, *, connect_s: float, total_s: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(
            total=total_s, connect=connect_s, sock_connect=connect_s, sock_read=total_s
        )
        self._total_s = total_s

    async def extract(
        self, node: Node, model: str, upload: MediaUpload, request_id: str
    ) -> PoseExtraction:
        """The node's keypoints; UpstreamFailure when it fails, the node's 4xx as an error."""
        form = aiohttp.FormData()
        form.add_field(
            "file", upload.data, filename=upload.filename, content_type=upload.content_type
        )
        form.add_field("model", model)
        headers = {"X-Request-Id": request_id, "Accept": NPZ_TYPE}
        if node.api_key:
            headers["Authorization"] = f"Bearer {node.api_key}"
        try:
            async with asyncio.timeout(self._total_s):
                async with self._session.post(
                    f"{node.url}{EXTRACT_PATH}", data=form, headers=headers, timeout=self._timeout
                ) as resp:
                    body = await resp.content.read(_MAX_BODY + 1)
                    status = resp.status
        except TimeoutError:
            raise UpstreamFailure(node.name, "timeout", "no keypoints in time") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamFailure(node.name, "connect", str(exc.os_error)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure(node.name, "disconnect", type(exc).__name__) from None
        if status >= 500:
            detail = body[:200].decode("utf-8", "replace")
            raise UpstreamFailure(node.name, "status", f"HTTP {status}: {detail}", status)
        if status >= 400:
            try:
                raise from_envelope(status, orjson.loads(body))
            except orjson.JSONDecodeError:
                raise from_envelope(status, None) from None
        if len(body) > _MAX_BODY:
            raise UpstreamFailure(node.name, "status", "answer over the size limit", status)
        try:
            return PoseExtraction.from_npz(body)
        except ValueError as exc:
            raise UpstreamFailure(
                node.name, "status", f"malformed keypoints: {exc}", status
            ) from None

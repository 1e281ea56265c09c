"""Client for remote pose nodes: a video in (multipart), keypoints out (``.npz``), over aiohttp.

``POST {node}/v1/pose/extract`` with the video as ``file`` (and ``model``)
answers ``application/x-npz``: the PoseExtraction's arrays, validated again here because
they come over the network. A node's 4xx (a bad video) is the client's fault and is passed
on unchanged; a connection error, a timeout, a 5xx or a malformed answer is an
UpstreamFailure, which the router retries once on another node.
"""

from __future__ import annotations

import aiohttp

from megacity.config.topology import Node
from megacity.engines.keypoints import PoseExtraction
from megacity.engines.node_http import NodeClient
from megacity.engines.openai_http import UpstreamFailure
from megacity.engines.upload import MediaUpload

EXTRACT_PATH = "/v1/pose/extract"
NPZ_TYPE = "application/x-npz"
# 10,800 frames × 33 × 4 float32 plus timestamps: ~5.8 MB; leave room for the container.
_MAX_BODY = 32 * 1024 * 1024

__all__ = ["EXTRACT_PATH", "NPZ_TYPE", "MediaUpload", "PoseHTTPClient"]


class PoseHTTPClient(NodeClient):
    """Sends extractions to remote pose nodes over a shared aiohttp session."""

    async def extract(
        self, node: Node, model: str, upload: MediaUpload, request_id: str
    ) -> PoseExtraction:
        """The node's keypoints; UpstreamFailure when it fails, the node's 4xx as an error."""
        form = aiohttp.FormData()
        form.add_field(
            "file", upload.data, filename=upload.filename, content_type=upload.content_type
        )
        form.add_field("model", model)
        body = await self.post_form(
            node, EXTRACT_PATH, form, request_id=request_id, max_body=_MAX_BODY, accept=NPZ_TYPE
        )
        try:
            return PoseExtraction.from_npz(body)
        except ValueError as exc:
            raise UpstreamFailure(node.name, "status", f"malformed keypoints: {exc}", 200) from None

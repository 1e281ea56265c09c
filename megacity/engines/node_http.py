"""One POST (a multipart form or JSON) to a remote engine node, with the router's reading of what came back.

A connection error, a timeout, a body cut off or a 5xx is an UpstreamFailure (the router
retries once on another node); a 4xx is the client's fault and becomes the node's own
error, unchanged; a 2xx gives the body to the engine's client to parse.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from megacity.config.topology import Node
from megacity.engines.openai_http import UpstreamFailure
from megacity.errors import from_envelope


class NodeClient:
    """POSTs forms or JSON to remote engine nodes over a shared aiohttp session, with timeouts."""

    def __init__(self, session: aiohttp.ClientSession, *, connect_s: float, total_s: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(
            total=total_s, connect=connect_s, sock_connect=connect_s, sock_read=total_s
        )
        self._total_s = total_s

    async def post_json(
        self,
        node: Node,
        path: str,
        body: dict[str, object],
        *,
        request_id: str,
        max_body: int,
    ) -> tuple[bytes, dict[str, str]]:
        """POST `body` as JSON; the body and headers of the node's 2xx answer."""
        return await self.post(
            node,
            path,
            orjson.dumps(body),
            request_id=request_id,
            max_body=max_body,
            content_type="application/json",
        )

    async def post_form(
        self,
        node: Node,
        path: str,
        form: aiohttp.FormData,
        *,
        request_id: str,
        max_body: int,
        accept: str | None = None,
    ) -> bytes:
        """The body of the node's 2xx answer to a multipart form (at most `max_body` bytes)."""
        body, _ = await self.post(
            node, path, form, request_id=request_id, max_body=max_body, accept=accept
        )
        return body

    async def post(
        self,
        node: Node,
        path: str,
        data: aiohttp.FormData | bytes,
        *,
        request_id: str,
        max_body: int,
        accept: str | None = None,
        content_type: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The body (at most `max_body` bytes) and headers (lower-cased) of the node's 2xx answer."""
        headers = {"X-Request-Id": request_id}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        if node.api_key:
            headers["Authorization"] = f"Bearer {node.api_key}"
        try:
            async with asyncio.timeout(self._total_s):
                async with self._session.post(
                    f"{node.url}{path}", data=data, headers=headers, timeout=self._timeout
                ) as resp:
                    body = await _read(resp, max_body + 1)
                    status = resp.status
                    answer_headers = {k.lower(): v for k, v in resp.headers.items()}
        except TimeoutError:
            raise UpstreamFailure(node.name, "timeout", "no answer in time") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamFailure(node.name, "connect", str(exc.os_error)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure(node.name, "disconnect", type(exc).__name__) from None
        if status >= 500:
            detail = body[:200].decode("utf-8", "replace")
            raise UpstreamFailure(node.name, "status", f"HTTP {status}: {detail}", status)
        if status >= 400:
            try:
                envelope = orjson.loads(body)
            except orjson.JSONDecodeError:
                envelope = None
            raise from_envelope(status, envelope)
        if len(body) > max_body:
            raise UpstreamFailure(node.name, "status", "answer over the size limit", status)
        return body, answer_headers


async def _read(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first `limit` bytes (StreamReader.read(n) stops at one chunk)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]

"""One multipart POST to a remote engine node, with the router's reading of what came back.

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
    """POSTs forms to remote engine nodes over a shared aiohttp session, with timeouts."""

    def __init__(self, session: aiohttp.ClientSession, *, connect_s: float, total_s: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(
            total=total_s, connect=connect_s, sock_connect=connect_s, sock_read=total_s
        )
        self._total_s = total_s

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
        """The body of the node's 2xx answer (at most `max_body` bytes)."""
        headers = {"X-Request-Id": request_id}
        if accept:
            headers["Accept"] = accept
        if node.api_key:
            headers["Authorization"] = f"Bearer {node.api_key}"
        try:
            async with asyncio.timeout(self._total_s):
                async with self._session.post(
                    f"{node.url}{path}", data=form, headers=headers, timeout=self._timeout
                ) as resp:
                    body = await resp.content.read(max_body + 1)
                    status = resp.status
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
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                data = None
            raise from_envelope(status, data)
        if len(body) > max_body:
            raise UpstreamFailure(node.name, "status", "answer over the size limit", status)
        return body

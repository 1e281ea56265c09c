"""HTTP client for OpenAI-compatible engine nodes (vLLM and friends), with timeouts everywhere.

`post` (the LLM hot path) speaks HTTP/1.1 itself to http:// nodes (engines/http1.py:
asyncio Protocol + httptools, ~100 us less CPU per request than aiohttp); https:// nodes,
and everything else that uses `session` (health probes, other engines), go through one
pooled aiohttp session. aiohttp, not httpx: as an upstream client on this 2-core machine
httpx managed ~1.0k requests/s against ~13k for aiohttp (same server, concurrency 16).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from megacity.config.topology import Node
from megacity.engines.http1 import ConnectError, Http1Pool


class UpstreamFailure(Exception):
    """A node did not answer usefully: kind is connect, timeout, disconnect or status."""

    def __init__(self, node: str, kind: str, detail: str, status: int | None = None) -> None:
        super().__init__(f"node {node}: {kind}: {detail}")
        self.node = node
        self.kind = kind
        self.detail = detail
        self.status = status


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: to connect, to the response headers, and between two reads of a body."""

    connect_s: float = 2.0
    first_byte_s: float = 60.0
    read_s: float = 60.0


class UpstreamBody(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]: ...

    async def read(self, n: int = -1) -> bytes: ...


class UpstreamResponse(Protocol):
    """What dispatch uses of a response: aiohttp's ClientResponse or http1.Http1Response."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> UpstreamBody: ...

    async def read(self) -> bytes: ...

    def release(self) -> Any: ...

    def close(self) -> None: ...


class OpenAIHTTPClient:
    """Keep-alive HTTP/1.1 pools for http:// nodes, an aiohttp session for the rest."""

    def __init__(self, timeouts: Timeouts, *, max_idle_per_node: int = 1024) -> None:
        self.timeouts = timeouts
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[tuple[str, str], URL] = {}  # parsed once per node and path
        self._max_idle = max_idle_per_node
        self._pool = Http1Pool(
            connect_s=timeouts.connect_s,
            first_byte_s=timeouts.first_byte_s,
            read_s=timeouts.read_s,
            max_idle=max_idle_per_node,
        )
        # per (node url, path, api key): the origin and the request's fixed head, or None
        # for an https node (aiohttp)
        self._heads: dict[tuple[str, str, str | None], tuple[tuple[str, int], bytes] | None] = {}

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=30
        )
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.timeouts.connect_s,
            sock_connect=self.timeouts.connect_s,
            sock_read=self.timeouts.read_s,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)
        )

    async def close(self) -> None:
        self._pool.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session_or_none(self) -> aiohttp.ClientSession | None:
        """The session once started, else None."""
        return self._session

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("upstream client not started")
        return self._session

    async def post(self, node: Node, path: str, body: bytes, request_id: str) -> UpstreamResponse:
        """POST JSON to a node and return once its headers arrived; UpstreamFailure otherwise."""
        key = (node.url, path, node.api_key)
        try:
            head = self._heads[key]
        except KeyError:
            head = self._heads[key] = _request_head(node, path)
            if head is not None:  # as many idle connections as the node takes requests
                self._pool.limit_idle(head[0], min(node.max_concurrency, self._max_idle))
        if head is None:
            return await self._post_aiohttp(node, path, body, request_id)
        origin, fixed = head
        data = b"".join(
            (
                fixed,
                request_id.encode("latin-1"),
                b"\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            )
        )
        if self._session is None:
            raise RuntimeError("upstream client not started")
        try:
            return await self._pool.request(origin, data)
        except TimeoutError:
            raise UpstreamFailure(node.name, "timeout", "no response headers in time") from None
        except ConnectError as exc:
            raise UpstreamFailure(node.name, "connect", str(exc.os_error)) from None
        except OSError as exc:
            raise UpstreamFailure(node.name, "disconnect", type(exc).__name__) from None

    async def _post_aiohttp(
        self, node: Node, path: str, body: bytes, request_id: str
    ) -> aiohttp.ClientResponse:
        headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
        if node.api_key:
            headers["Authorization"] = f"Bearer {node.api_key}"
        url = self._urls.get((node.url, path))
        if url is None:
            url = self._urls[(node.url, path)] = URL(f"{node.url}{path}")
        try:
            async with asyncio.timeout(self.timeouts.first_byte_s):
                return await self.session.post(url, data=body, headers=headers)
        except TimeoutError:
            raise UpstreamFailure(node.name, "timeout", "no response headers in time") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamFailure(node.name, "connect", str(exc.os_error)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure(node.name, "disconnect", type(exc).__name__) from None


def _request_head(node: Node, path: str) -> tuple[tuple[str, int], bytes] | None:
    """The origin and the request bytes up to the X-Request-Id value; None for https."""
    parts = urlsplit(node.url)
    if parts.scheme != "http" or parts.hostname is None:
        return None
    port = parts.port or 80
    host = parts.hostname
    host_header = f"[{host}]" if ":" in host else host
    if port != 80:
        host_header = f"{host_header}:{port}"
    target = f"{parts.path}{path}" or "/"
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {host_header}",
        "Content-Type: application/json",
        "Accept: */*",
    ]
    if node.api_key:
        lines.append(f"Authorization: Bearer {node.api_key}")
    return (host, port), ("\r\n".join(lines) + "\r\nX-Request-Id: ").encode("latin-1")

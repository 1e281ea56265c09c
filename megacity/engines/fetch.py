"""Fetching a URL a client named (an image or video part), without opening the network to it.

* Only ``http`` and ``https``, no credentials in the URL.
* The host is resolved here and every address it resolves to is checked
  (safety/ssrf.py); aiohttp then connects to exactly those addresses, so there is no
  second lookup an attacker's DNS could answer differently. IP literals are checked
  before any connection (aiohttp does not resolve them).
* Redirects are followed by hand, at most `max_redirects`, each target checked again.
* The body is capped while it streams (a 1 GB body costs `max_bytes` and is cut), the
  whole fetch, redirects included, has one time limit, and proxies from the
  environment are ignored.

Every refusal is the client's: a 4xx naming the part (`param`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from megacity.engines.media import media_too_large
from megacity.errors import BadRequest
from megacity.safety.ssrf import AddressPolicy

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Bytes a body may have, seconds a fetch may take (redirects included), hops allowed."""

    max_bytes: int = 10 * 1024 * 1024
    timeout_s: float = 10.0
    max_redirects: int = 3


@dataclass(frozen=True, slots=True)
class Fetched:
    """A body fetched from `url` (the last hop) and the content type it was served with."""

    data: bytes
    content_type: str
    url: str


class ForbiddenAddress(Exception):
    """The host resolved to an address the policy refuses (raised by the resolver)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


class _CheckedResolver(AbstractResolver):
    """Resolves with getaddrinfo and refuses the name if any of its addresses is refused."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, family=family, flags=socket.AI_ADDRCONFIG
        )
        results: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            address = str(sockaddr[0])
            reason = self._policy.check(address)
            if reason is not None:
                raise ForbiddenAddress(host, reason)
            results.append(
                {
                    "hostname": host,
                    "host": address,
                    "port": int(sockaddr[1]),
                    "family": fam,
                    "proto": proto,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        if not results:
            raise OSError(f"{host} has no address")
        return results

    async def close(self) -> None:
        return None


class MediaFetcher:
    """Fetches client-named URLs under an address policy and limits; one aiohttp session."""

    def __init__(self, policy: AddressPolicy, limits: FetchLimits) -> None:
        self.policy = policy
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: a router that never sees a URL part never opens it.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=_CheckedResolver(self.policy), use_dns_cache=False, limit=64
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # never through an HTTP(S)_PROXY from the environment
                auto_decompress=False,  # a small gzip body must not become a huge one
                headers={"User-Agent": "MegaCity-Router/1 (media fetch)"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self, url: str, *, param: str, accept: str = "image/*", max_bytes: int | None = None
    ) -> Fetched:
        """The body at `url` (4xx naming `param` when it is refused or cannot be fetched);
        `max_bytes` overrides the limits' cap for this fetch."""
        limit = self.limits.max_bytes if max_bytes is None else max_bytes
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                return await self._follow(url, param, accept, limit)
        except TimeoutError:
            raise BadRequest(
                f"fetching the URL took longer than {self.limits.timeout_s:g} s",
                code="url_fetch_timeout",
                param=param,
            ) from None

    async def _follow(self, url: str, param: str, accept: str, limit: int) -> Fetched:
        target = self.check_url(url, param)
        for _ in range(self.limits.max_redirects + 1):
            try:
                async with self._client().get(
                    target,
                    allow_redirects=False,
                    headers={"Accept": accept, "Accept-Encoding": "identity"},
                ) as resp:
                    if resp.status in _REDIRECTS:
                        location = resp.headers.get("Location")
                        if not location:
                            raise _failed(f"a redirect ({resp.status}) without a Location", param)
                        target = self.check_url(str(target.join(URL(location))), param)
                        continue
                    if resp.status != 200:
                        raise _failed(f"the server answered HTTP {resp.status}", param)
                    data = await _body(resp, param, limit)
                    ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
                    return Fetched(data, ctype.lower(), str(target))
            except ForbiddenAddress as exc:
                raise _forbidden(f"{exc.host} resolves to a {exc.reason} address", param) from None
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                raise _failed(
                    f"the URL could not be fetched ({type(exc).__name__})", param
                ) from None
        raise _failed(f"more than {self.limits.max_redirects} redirects", param)

    def check_url(self, url: str, param: str) -> URL:
        """A URL the router may request: http(s), no credentials, no refused IP literal."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise BadRequest("not a valid URL", code="url_invalid", param=param) from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise BadRequest(
                "only http(s) URLs (or data: URLs) are accepted", code="url_invalid", param=param
            )
        if parsed.user is not None or parsed.password is not None:
            raise BadRequest("URLs with credentials are refused", code="url_invalid", param=param)
        host = parsed.host.strip("[]")
        literal = _ip_literal(host)
        if literal is not None:
            reason = self.policy.check(literal)
            if reason is not None:
                raise _forbidden(f"{host} is a {reason} address", param)
        return parsed


async def _body(resp: aiohttp.ClientResponse, param: str, limit: int) -> bytes:
    """The body, cut (and the connection dropped) as soon as it passes `limit` bytes."""
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise media_too_large(limit, param)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            resp.close()  # stop reading: drop the connection
            raise media_too_large(limit, param)
        chunks.append(chunk)
    return b"".join(chunks)


def _ip_literal(host: str) -> str | None:
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    return None


def _forbidden(detail: str, param: str) -> BadRequest:
    return BadRequest(
        f"the URL is not fetched: {detail}; only public internet addresses are allowed",
        code="url_forbidden",
        param=param,
    )


def _failed(detail: str, param: str) -> BadRequest:
    return BadRequest(detail, code="url_fetch_failed", param=param)


__all__ = ["FetchLimits", "Fetched", "ForbiddenAddress", "MediaFetcher"]

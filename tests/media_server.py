"""A loopback HTTP server that serves test media and counts every request it gets.

The SSRF tests point image URLs at it (and at a second one on 127.0.0.2) to prove what
the router fetched and, above all, what it never asked for. Runs aiohttp in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

from aiohttp import web

GIGABYTE = 1024**3


class MediaServer:
    """Routes: /image.png, /photo.jpg, /video.mp4, /page.html, /huge (1 GB, declared),
    /endless (chunked, never ends), /slow, /redirect?to=URL, /loop."""

    def __init__(self, host: str = "127.0.0.1", media: dict[str, tuple[bytes, str]] | None = None):
        self.host = host
        self.media = dict(media or {})
        self.hits: Counter[str] = Counter()
        self.bytes_sent = 0
        self.port = 0
        self._stopping = False
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def total(self) -> int:
        return sum(self.hits.values())

    def start(self) -> MediaServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/loop", self._loop_redirect)
        app.router.add_get("/huge", self._huge)
        app.router.add_get("/endless", self._endless)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/{name}", self._file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] += 1
        if name not in self.media:
            return web.Response(status=404, text="not found")
        data, ctype = self.media[name]
        self.bytes_sent += len(data)
        return web.Response(body=data, content_type=ctype)

    async def _redirect(self, request: web.Request) -> web.Response:
        self.hits["redirect"] += 1
        raise web.HTTPFound(request.query["to"])

    async def _loop_redirect(self, request: web.Request) -> web.Response:
        self.hits["loop"] += 1
        raise web.HTTPFound("/loop")

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        self.hits["huge"] += 1
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = GIGABYTE
        return await self._pour(request, response)

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        self.hits["endless"] += 1
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        return await self._pour(request, response)

    async def _pour(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        await response.prepare(request)
        chunk = b"\x89PNG" + b"\0" * (64 * 1024 - 4)
        try:
            while self.bytes_sent < GIGABYTE and not self._stopping:
                await response.write(chunk)
                self.bytes_sent += len(chunk)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass  # the client hung up: what we wanted
        return response

    async def _slow(self, request: web.Request) -> web.Response:
        self.hits["slow"] += 1
        for _ in range(300):  # 30 s, unless the server is stopping
            if self._stopping:
                break
            await asyncio.sleep(0.1)
        return web.Response(text="late")

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

"""A lean HTTP/1.1 keep-alive client for the LLM hot path: asyncio Protocol + httptools.

aiohttp cost ~100-120 us of CPU per relayed LLM request (request building, a write task,
its parser, timers). This client writes each request in one `transport.write`, parses with
httptools inside `data_received`, and arms a timer only while someone actually waits.

Contract (what routing/dispatch.py relies on, the same surface as aiohttp's response):
`status`, `headers.get(name, default)` (case-insensitive), `await read()`,
`content.iter_any()`, `await content.read(n)`, `release()`, `close()`. Body failures
raise TimeoutError (no byte within the read timeout) or ConnectionResetError (an OSError).

Connections are pooled per origin (host, port), at most `max_idle` idle ones each, most
recently used first. A connection goes back to the pool only when its response was read
to the end and the server did not say `Connection: close`. A pooled connection the server
closed while idle is detected on the write or before the first response byte, and the
request is then sent once more on a fresh connection: safe for a POST because the server
answered nothing on the old one. `close()` or cancellation drops the connection, which is
how vLLM learns that it should abort a generation.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import httptools

_HIGH_WATER = 256 * 1024  # buffered body bytes above which the socket stops being read
_LOW_WATER = 64 * 1024


class StaleConnection(ConnectionResetError):
    """A reused idle connection was closed by the server before any response byte."""


class Headers(dict[str, str]):
    """Response headers keyed by lower-case name; `get` takes any case, like aiohttp's."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key.lower() if isinstance(key, str) else key)


class _Conn(asyncio.Protocol):
    """One TCP connection; it carries one response at a time."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_error",
        "_header_name",
        "_headers",
        "_paused",
        "_status",
        "_waiter",
        "close_delimited",
        "closed",
        "got_bytes",
        "headers_done",
        "idle_since",
        "keep_alive",
        "loop",
        "message_done",
        "origin",
        "parser",
        "reused",
        "transport",
    )

    def __init__(self, origin: tuple[str, int], loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self._status = 0
        self._headers = Headers()
        self._header_name = ""
        self.headers_done = False
        self.message_done = False
        self.keep_alive = True
        self.close_delimited = False
        self.got_bytes = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False

    # -- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionResetError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(ConnectionResetError(f"malformed response: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.message_done and self.close_delimited:
            self.message_done = True  # a body without length ends where the connection does
            self.keep_alive = False
        elif not self.message_done and self._error is None:
            if not self.got_bytes and self.reused:
                self._error = StaleConnection("pooled connection closed by the server")
            else:
                self._error = ConnectionResetError("connection closed by the server")
        self._wake()

    def pause_writing(self) -> None:  # requests are small; nothing to do
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks -----------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()
        if 100 <= self._status < 200:  # an interim answer: the real one follows
            self._headers = Headers()
            return
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()
        headers = self._headers
        self.close_delimited = (
            "content-length" not in headers
            and "transfer-encoding" not in headers
            and self._status not in (204, 304)
        )
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.message_done = True
            self._wake()

    # -- waiting -----------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError())

    async def wait(self, timeout: float) -> None:
        """Until the parser makes progress or the connection ends; TimeoutError after `timeout`."""
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, self._expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def take(self, limit: int = -1) -> bytes:
        """Buffered body bytes (at most `limit` when given); resumes reading below the low mark."""
        chunks = self._chunks
        if limit < 0 or self._buffered <= limit:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
        else:
            data = b"".join(chunks)
            chunks.clear()
            chunks.append(data[limit:])
            data = data[:limit]
        self._buffered -= len(data)
        if self._paused and self._buffered < _LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def buffered(self) -> int:
        return self._buffered

    @property
    def paused(self) -> bool:
        return self._paused

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Http1Response:
    """A response whose headers arrived; its body is read through `read()` or `content`.

    `content` is the response itself (no reference cycle: a response dropped unread is
    freed at once, and `__del__` drops its connection).
    """

    __slots__ = ("_conn", "_done", "_pool", "_read_s", "headers", "status")

    def __init__(self, conn: _Conn, pool: Http1Pool, read_s: float) -> None:
        self._conn = conn
        self._pool = pool
        self._read_s = read_s
        self._done = False
        self.status = conn._status
        self.headers = conn._headers

    @property
    def content(self) -> Http1Response:
        """The body as it arrives: `iter_any()` and `read(n)`."""
        return self

    async def iter_any(self) -> AsyncIterator[bytes]:
        while True:
            data = await self._next(-1)
            if not data:
                return
            yield data

    async def _next(self, limit: int) -> bytes:
        conn = self._conn
        while True:
            if conn.buffered:
                return conn.take(limit)
            if conn.message_done:
                return b""
            conn.raise_error()
            if self._done:
                raise ConnectionResetError("response already closed")
            await conn.wait(self._read_s)

    async def read(self, n: int = -1) -> bytes:
        """The whole body, then the connection goes back to the pool; with n >= 0 up to n
        bytes as soon as any are there (b"" at the end), as aiohttp's `content.read(n)`."""
        if n >= 0:
            return await self._next(n)
        conn = self._conn
        parts: list[bytes] = []
        while not conn.message_done:
            conn.raise_error()
            if self._done:
                raise ConnectionResetError("response already closed")
            if conn.paused:  # a large body: take what came, which resumes reading
                parts.append(conn.take())
            await conn.wait(self._read_s)
        data = conn.take()
        self.release()
        if parts:
            parts.append(data)
            return b"".join(parts)
        return data

    def release(self) -> None:
        """Hand the connection back when the body was read to the end, else drop it."""
        if self._done:
            return
        self._done = True
        conn = self._conn
        if conn.message_done and conn.keep_alive and not conn.closed and not conn.buffered:
            self._pool._put(conn)
        else:
            conn.abort()

    def close(self) -> None:
        """Drop the connection (the server sees it close)."""
        if not self._done:
            self._done = True
            self._conn.abort()

    def __del__(self) -> None:  # dropped unread (a stream never relayed): don't leak it
        if not self._done:
            self._conn.abort()


class Http1Pool:
    """Keep-alive connections per (host, port); `request` sends one request on one of them."""

    def __init__(
        self,
        *,
        connect_s: float,
        first_byte_s: float,
        read_s: float,
        max_idle: int = 64,
        idle_s: float = 30.0,
    ) -> None:
        self.connect_s = connect_s
        self.first_byte_s = first_byte_s
        self.read_s = read_s
        self.max_idle = max_idle
        self.idle_s = idle_s
        self._idle: dict[tuple[str, int], deque[_Conn]] = {}
        self._max_idle: dict[tuple[str, int], int] = {}  # per origin, where set
        self.opened = 0  # connections opened so far (tests, metrics)

    def limit_idle(self, origin: tuple[str, int], max_idle: int) -> None:
        """Keep at most `max_idle` idle connections to `origin` (default: the pool's)."""
        self._max_idle[origin] = max(1, max_idle)

    def idle_count(self, origin: tuple[str, int]) -> int:
        return sum(1 for c in self._idle.get(origin, ()) if not c.closed)

    async def request(self, origin: tuple[str, int], data: bytes) -> Http1Response:
        """Write `data` (a whole request) and return once the response headers arrived.

        Raises ConnectError (an OSError) when no connection could be opened, TimeoutError
        when the connection or the headers took too long, and ConnectionResetError when the
        connection broke before the headers.
        """
        loop = asyncio.get_running_loop()
        conn = self._get(origin, loop)
        if conn is None:
            conn = await self._open(origin, loop)
        try:
            try:
                return await self._exchange(conn, data, loop)
            except StaleConnection:
                conn = await self._open(origin, loop)
                return await self._exchange(conn, data, loop)
        except BaseException:  # a timeout, a broken connection or a cancellation
            conn.abort()
            raise

    async def _exchange(
        self, conn: _Conn, data: bytes, loop: asyncio.AbstractEventLoop
    ) -> Http1Response:
        transport = conn.transport
        if conn.closed or transport is None or transport.is_closing():
            conn.raise_error()
            raise (
                StaleConnection("pooled connection closed")
                if conn.reused
                else (ConnectionResetError("connection closed"))
            )
        transport.write(data)
        deadline = loop.time() + self.first_byte_s
        while not conn.headers_done:
            conn.raise_error()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError()
            await conn.wait(remaining)
        return Http1Response(conn, self, self.read_s)

    def _get(self, origin: tuple[str, int], loop: asyncio.AbstractEventLoop) -> _Conn | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest_ok = loop.time() - self.idle_s
        while idle:
            conn = idle.pop()  # the most recently used: the likeliest to be still open
            if conn.closed or conn.idle_since < oldest_ok:
                conn.abort()
                continue
            conn.reused = True
            return conn
        return None

    def _put(self, conn: _Conn) -> None:
        idle = self._idle.get(conn.origin)
        if idle is None:
            idle = self._idle[conn.origin] = deque()
        conn._reset()
        conn.idle_since = conn.loop.time()
        idle.append(conn)
        while len(idle) > self._max_idle.get(conn.origin, self.max_idle):
            idle.popleft().abort()

    async def _open(self, origin: tuple[str, int], loop: asyncio.AbstractEventLoop) -> _Conn:
        self.opened += 1
        try:
            async with asyncio.timeout(self.connect_s):
                _, conn = await loop.create_connection(lambda: _Conn(origin, loop), *origin)
        except TimeoutError:
            raise
        except OSError as exc:
            raise ConnectError(exc) from None
        return conn

    def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().abort()
        self._idle.clear()


class ConnectError(OSError):
    """No connection could be opened; `os_error` is why."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(os_error.errno, str(os_error))
        self.os_error = os_error

    def __str__(self) -> str:
        return str(self.os_error)

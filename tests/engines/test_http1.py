"""The lean HTTP/1.1 client of the LLM path against small raw-socket servers on loopback.

Each test runs its own server on an ephemeral port that answers in one particular way
(a length, chunks, a body ending at close, a stall, an idle close...) and counts the
connections it accepted, so reuse and drops are seen from the server's side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import uvloop

from megacity.config.topology import Node
from megacity.engines.http1 import Http1Pool
from megacity.engines.openai_http import (
    OpenAIHTTPClient,
    Timeouts,
    UpstreamFailure,
    _request_head,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return uvloop.run(coro)


class Server:
    """A loopback server; `handler` is called for each connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.eof = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request (head and body), or None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.eof.set()
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return head + body

    def node(self, api_key: str | None = None) -> Node:
        return Node(
            name="n1",
            engine="llm",
            url=f"http://127.0.0.1:{self.port}",
            models=("m",),
            region="r",
            api_key=api_key,
        )


def response(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
    while (req := await s.read_request(reader)) is not None:
        writer.write(response(b'{"echo": %d}' % len(req)))
        await writer.drain()


def client(
    connect_s: float = 2.0, first_byte_s: float = 5.0, read_s: float = 5.0, max_idle: int = 64
) -> OpenAIHTTPClient:
    return OpenAIHTTPClient(Timeouts(connect_s, first_byte_s, read_s), max_idle_per_node=max_idle)


def test_content_length_and_request_headers() -> None:
    async def main() -> None:
        async with Server(keep_alive) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node("sk-1"), "/v1/chat/completions", b"{}", "rid-1")
                assert resp.status == 200
                assert resp.headers.get("content-type") == "application/json"
                assert resp.headers.get("Content-Type") == "application/json"
                assert await resp.read() == b'{"echo": %d}' % len(server.requests[0])
            finally:
                await c.close()
        head = server.requests[0].decode()
        assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
        for line in (
            f"Host: 127.0.0.1:{server.port}",
            "Content-Type: application/json",
            "X-Request-Id: rid-1",
            "Authorization: Bearer sk-1",
            "Content-Length: 2",
        ):
            assert f"\r\n{line}\r\n" in head
        assert head.endswith("\r\n\r\n{}")

    run(main())


def test_chunked_body_streams_in_pieces() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        while await s.read_request(reader) is not None:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for i in range(3):
                event = b"data: %d\n\n" % i
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
                await asyncio.sleep(0.02)
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert resp.headers.get("Content-Type") == "text/event-stream"
                pieces = [chunk async for chunk in resp.content.iter_any()]
                assert b"".join(pieces) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
                assert len(pieces) >= 2  # relayed as they came, not at the end
                resp.release()
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert (await resp.read()).count(b"data:") == 3
            finally:
                await c.close()
            assert server.connections == 1  # a chunked body read to the end: reused

    run(main())


def test_body_ending_at_connection_close() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"part two")
        await writer.drain()

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert await resp.read() == b"part one, part two"
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert await resp.read() == b"part one, part two"
            finally:
                await c.close()
            assert server.connections == 2  # never pooled: it ended with the connection

    run(main())


def test_keep_alive_one_connection_for_sequential_requests() -> None:
    async def main() -> None:
        async with Server(keep_alive) as server:
            c = client()
            await c.start()
            try:
                for i in range(20):
                    resp = await c.post(server.node(), "/v1/completions", b"x" * i, "r")
                    assert resp.status == 200
                    await resp.read()
            finally:
                await c.close()
            assert server.connections == 1
            assert len(server.requests) == 20

    run(main())


def test_connection_close_header_is_not_reused() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        writer.write(response(b"{}", b"Connection: close\r\n"))
        await writer.drain()
        await asyncio.sleep(0.2)  # the server keeps its end open a while: the client must not reuse

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                for _ in range(3):
                    resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                    assert await resp.read() == b"{}"
            finally:
                await c.close()
            assert server.connections == 3

    run(main())


def test_server_closing_an_idle_pooled_connection() -> None:
    """The next request goes out on a fresh connection, whether or not the close was seen."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        writer.write(response(b"{}"))  # keep-alive, then close at once while idle
        await writer.drain()

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert await resp.read() == b"{}"
                await asyncio.sleep(0.05)  # the close arrives while the connection is idle
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert await resp.read() == b"{}"
            finally:
                await c.close()
            assert server.connections == 2

    run(main())


def test_stale_connection_closed_during_the_write_is_retried_once() -> None:
    """The close is not seen before the write: the request is resent on a fresh connection."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        if s.connections == 1:
            writer.write(response(b"first"))
            await writer.drain()
            await reader.read(1)  # the next request's first bytes: close without answering
            return
        writer.write(response(b"second"))
        await writer.drain()
        await asyncio.sleep(0.1)

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert await resp.read() == b"first"
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert await resp.read() == b"second"
            finally:
                await c.close()
            assert server.connections == 2

    run(main())


def test_connection_refused_is_a_connect_failure() -> None:
    async def main() -> None:
        async with Server(keep_alive) as server:
            node = server.node()
        await asyncio.sleep(0.01)  # the listening socket is closed: nothing listens there
        c = client()
        await c.start()
        try:
            with pytest.raises(UpstreamFailure) as info:
                await c.post(node, "/v1/completions", b"{}", "r")
        finally:
            await c.close()
        assert info.value.kind == "connect"

    run(main())


def test_slow_headers_time_out() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        await reader.read(1)  # answers nothing; sees the client's close
        s.eof.set()

    async def main() -> None:
        async with Server(handler) as server:
            c = client(first_byte_s=0.2)
            await c.start()
            try:
                with pytest.raises(UpstreamFailure) as info:
                    await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert info.value.kind == "timeout"
                await asyncio.wait_for(server.eof.wait(), 2)  # the connection was dropped
            finally:
                await c.close()

    run(main())


def test_stall_mid_body_times_out() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
        await writer.drain()
        await reader.read(1)
        s.eof.set()

    async def main() -> None:
        async with Server(handler) as server:
            c = client(read_s=0.2)
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                with pytest.raises(TimeoutError):
                    await resp.read()
                resp.close()
                await asyncio.wait_for(server.eof.wait(), 2)
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert await resp.content.read(10) == b"half"
                with pytest.raises(TimeoutError):
                    async for _ in resp.content.iter_any():
                        pass
                resp.close()
            finally:
                await c.close()
            assert server.connections == 2

    run(main())


def test_body_cut_mid_way_is_a_connection_error() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
        await writer.drain()

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                with pytest.raises(OSError):
                    await resp.read()
                resp.close()
            finally:
                await c.close()

    run(main())


def test_cancellation_closes_the_connection() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await reader.read(1)  # b"" once the client drops the connection
        s.eof.set()

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")

                async def consume() -> None:
                    try:
                        async for _ in resp.content.iter_any():
                            pass
                    except BaseException:
                        resp.close()  # what dispatch does when the client left
                        raise

                task = asyncio.create_task(consume())
                await asyncio.sleep(0.05)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                await asyncio.wait_for(server.eof.wait(), 2)
            finally:
                await c.close()

    run(main())


def test_cancellation_while_waiting_for_headers_closes_the_connection() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        await reader.read(1)
        s.eof.set()

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                task = asyncio.create_task(c.post(server.node(), "/v1/completions", b"{}", "r"))
                await asyncio.sleep(0.05)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                await asyncio.wait_for(server.eof.wait(), 2)
            finally:
                await c.close()

    run(main())


def test_pool_keeps_at_most_max_idle_connections() -> None:
    async def main() -> None:
        async with Server(keep_alive) as server:
            c = client(max_idle=3)
            await c.start()
            node = server.node()
            try:
                resps = await asyncio.gather(
                    *(c.post(node, "/v1/completions", b"{}", "r") for _ in range(8))
                )
                assert server.connections == 8
                for resp in resps:
                    await resp.read()
                pool: Http1Pool = c._pool
                assert pool.idle_count(("127.0.0.1", server.port)) == 3
                for _ in range(5):
                    resp = await c.post(node, "/v1/completions", b"{}", "r")
                    await resp.read()
                assert server.connections == 8  # the idle ones were reused
            finally:
                await c.close()

    run(main())


def test_slow_consumer_pauses_reading() -> None:
    """A large body is held back by the socket, not buffered whole, while nobody reads."""
    size = 4 * 1024 * 1024

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                await asyncio.sleep(0.2)
                assert resp._conn.buffered < 1024 * 1024  # type: ignore[attr-defined]
                total = 0
                async for chunk in resp.content.iter_any():
                    total += len(chunk)
                assert total == size
                resp.release()
            finally:
                await c.close()

    run(main())


def test_an_error_status_with_a_body() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        while await s.read_request(reader) is not None:
            body = b'{"error": "overloaded"}'
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                assert resp.status == 503
                assert await resp.content.read(5) == b'{"err'
                resp.close()
            finally:
                await c.close()

    run(main())


def test_a_response_dropped_unread_closes_its_connection() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await s.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await reader.read(1)
        s.eof.set()

    async def main() -> None:
        async with Server(handler) as server:
            c = client()
            await c.start()
            try:
                resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                del resp  # e.g. a stream whose relay never started
                await asyncio.wait_for(server.eof.wait(), 2)
            finally:
                await c.close()

    run(main())


def test_request_heads_per_node_url() -> None:
    def node(url: str, max_concurrency: int = 64) -> Node:
        return Node(
            name="n",
            engine="llm",
            url=url,
            models=("m",),
            region="r",
            max_concurrency=max_concurrency,
        )

    head = _request_head(node("http://gpu-1:8000/prefix/"), "/v1/completions")
    assert head is not None
    assert head[0] == ("gpu-1", 8000)
    assert head[1].startswith(b"POST /prefix/v1/completions HTTP/1.1\r\nHost: gpu-1:8000\r\n")
    head = _request_head(node("http://gpu-1"), "/v1/completions")
    assert head is not None
    assert head[0] == ("gpu-1", 80)
    assert b"\r\nHost: gpu-1\r\n" in head[1]
    assert _request_head(node("https://api.example.com"), "/v1/completions") is None  # aiohttp

    async def main() -> None:
        async with Server(keep_alive) as server:
            c = client()
            await c.start()
            n = node(f"http://127.0.0.1:{server.port}", max_concurrency=2)
            try:
                resps = await asyncio.gather(
                    *(c.post(n, "/v1/completions", b"{}", "r") for _ in range(4))
                )
                for resp in resps:
                    await resp.read()
                assert c._pool.idle_count(("127.0.0.1", server.port)) == 2
            finally:
                await c.close()

    run(main())


def test_a_large_body_read_whole() -> None:
    size = 3 * 1024 * 1024 + 7

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        while await s.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            writer.write(b"y" * size)
            await writer.drain()

    async def main() -> None:
        async with Server(handler) as server:
            c = client(read_s=1.0)
            await c.start()
            try:
                for _ in range(2):
                    resp = await c.post(server.node(), "/v1/completions", b"{}", "r")
                    assert await resp.read() == b"y" * size
            finally:
                await c.close()
            assert server.connections == 1

    run(main())

"""Fetching client-named URLs: loopback servers prove what was fetched and what never was.

The fetcher here allows 127.0.0.1 (as the settings-only allow-list does in tests) so a
real image can be served from loopback; a second server on 127.0.0.2 — not allowed — is
the "private address" a redirect tries to reach, and must never see a request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from megacity.engines.fetch import FetchLimits, MediaFetcher
from megacity.errors import MegaCityError
from megacity.safety.ssrf import AddressPolicy
from tests.media_server import MediaServer
from tests.video import png_image

PNG = png_image()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[MediaServer, MediaServer]]:
    public = MediaServer("127.0.0.1", {"image.png": (PNG, "image/png")}).start()
    private = MediaServer("127.0.0.2", {"secret.png": (PNG, "image/png")}).start()
    yield public, private
    public.stop()
    private.stop()


def _fetch(url: str, *, allow: tuple[str, ...] = ("127.0.0.1/32",), **limits: float) -> bytes:
    async def run() -> bytes:
        fetcher = MediaFetcher(AddressPolicy(allow), FetchLimits(**limits))  # type: ignore[arg-type]
        try:
            return (await fetcher.fetch(url, param="image")).data
        finally:
            await fetcher.close()

    return asyncio.run(run())


def _refused(url: str, code: str, status: int = 400, **kwargs: object) -> MegaCityError:
    with pytest.raises(MegaCityError) as info:
        _fetch(url, **kwargs)  # type: ignore[arg-type]
    assert (info.value.status, info.value.code) == (status, code), info.value.message
    assert info.value.param == "image"
    return info.value


def test_an_allowed_server_is_fetched(servers: tuple[MediaServer, MediaServer]) -> None:
    public, _ = servers
    assert _fetch(f"{public.url}/image.png") == PNG
    assert _fetch(f"{public.url}/redirect?to=/image.png") == PNG  # a redirect on the same host


def test_loopback_is_refused_without_the_allow_list(
    servers: tuple[MediaServer, MediaServer],
) -> None:
    public, _ = servers
    before = public.total
    err = _refused(f"{public.url}/image.png", "url_forbidden", allow=())
    assert "loopback" in err.message
    _refused(f"http://localhost:{public.port}/image.png", "url_forbidden", allow=())  # by name
    _refused(f"http://[::ffff:127.0.0.1]:{public.port}/image.png", "url_forbidden", allow=())
    assert public.total == before  # not one request arrived


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x.png",
        "http://0.0.0.0/x.png",
        "http://192.168.0.1:8080/x.png",
    ],
)
def test_private_ranges_are_refused_before_connecting(url: str) -> None:
    began = time.monotonic()
    _refused(url, "url_forbidden", allow=())
    assert time.monotonic() - began < 2  # refused, not timed out


def test_a_redirect_to_a_private_address_is_never_followed(
    servers: tuple[MediaServer, MediaServer],
) -> None:
    public, private = servers
    _refused(f"{public.url}/redirect?to={private.url}/secret.png", "url_forbidden")
    _refused(f"{public.url}/redirect?to=http://169.254.169.254/latest/", "url_forbidden")
    assert private.total == 0


def test_redirect_loops_and_odd_urls_are_refused(servers: tuple[MediaServer, MediaServer]) -> None:
    public, _ = servers
    _refused(f"{public.url}/loop", "url_fetch_failed")
    _refused(f"http://user:secret@127.0.0.1:{public.port}/image.png", "url_invalid")
    _refused("ftp://example.com/x.png", "url_invalid")
    _refused("file:///etc/passwd", "url_invalid")
    _refused(f"http://2130706433:{public.port}/image.png", "url_fetch_failed", allow=())
    _refused(f"{public.url}/missing.png", "url_fetch_failed")


def test_a_huge_body_is_cut_while_it_streams(servers: tuple[MediaServer, MediaServer]) -> None:
    public, _ = servers
    _refused(f"{public.url}/huge", "media_too_large", 413, max_bytes=1024 * 1024)  # declared
    start = public.bytes_sent
    began = time.monotonic()
    _refused(f"{public.url}/endless", "media_too_large", 413, max_bytes=1024 * 1024)
    assert time.monotonic() - began < 10
    deadline = time.monotonic() + 10
    sent = public.bytes_sent - start
    while time.monotonic() < deadline and public.bytes_sent - start != sent:
        sent = public.bytes_sent - start
        time.sleep(0.2)
    assert sent < 64 * 1024 * 1024  # the connection was dropped, not drained to 1 GB


def test_a_slow_server_meets_the_time_limit(servers: tuple[MediaServer, MediaServer]) -> None:
    public, _ = servers
    began = time.monotonic()
    _refused(f"{public.url}/slow", "url_fetch_timeout", timeout_s=1.0)
    assert time.monotonic() - began < 10

"""GET /api/v1/files/{key} on a real uvicorn server on loopback, in front of a real store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from megacity.api import errors, files
from megacity.storage import LocalObjectStore, URLSigner
from megacity.testing import free_port
from tests.storage.conftest import SECRET


@dataclass
class Server:
    url: str
    store: LocalObjectStore
    client: httpx.Client

    def signed(self, key: str, ttl_s: int = 60) -> str:
        split = urlsplit(self.store.signed_url(key, ttl_s))
        return f"{split.path}?{split.query}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    store = LocalObjectStore(tmp_path_factory.mktemp("files") / "objects", URLSigner(SECRET, base))
    app = FastAPI()
    app.state.services = SimpleNamespace(storage=store)
    errors.install(app)
    app.include_router(files.router)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started, "uvicorn did not start"
    with httpx.Client(base_url=base, timeout=5) as client:
        yield Server(base, store, client)
    uv.should_exit = True
    thread.join(timeout=10)


def _error(resp: httpx.Response) -> dict[str, object]:
    body = resp.json()
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    return error


def test_a_signed_url_streams_the_object(server: Server) -> None:
    data = b"\x00\x01video" * 50_000
    server.store.put("kzone/dance/references/r1/video.mp4", data, "video/mp4")
    url = server.store.signed_url("kzone/dance/references/r1/video.mp4", 60)
    assert url.startswith(server.url + "/api/v1/files/kzone/dance/references/r1/video.mp4?")
    resp = server.client.get(url)
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["content-type"] == "video/mp4"
    assert resp.headers["content-length"] == str(len(data))
    assert resp.headers["cache-control"].startswith("private")
    assert resp.headers["content-disposition"] == 'inline; filename="video.mp4"'
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["accept-ranges"] == "bytes"
    assert "sandbox" in resp.headers["content-security-policy"]
    again = server.client.get(url, headers={"If-None-Match": resp.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_active_content_is_downloaded_not_rendered(server: Server) -> None:
    server.store.put("exams/e1/attachments/page.html", b"<script>alert(1)</script>", "text/html")
    resp = server.client.get(server.signed("exams/e1/attachments/page.html"))
    assert resp.status_code == 200
    assert resp.headers["content-disposition"] == 'attachment; filename="page.html"'
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_byte_ranges(server: Server) -> None:
    data = bytes(range(256)) * 10
    server.store.put("r/clip.mp4", data, "video/mp4")
    path = server.signed("r/clip.mp4")
    resp = server.client.get(path, headers={"Range": "bytes=10-19"})
    assert resp.status_code == 206
    assert resp.content == data[10:20]
    assert resp.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = server.client.get(path, headers={"Range": "bytes=-5"})
    assert (tail.status_code, tail.content) == (206, data[-5:])
    rest = server.client.get(path, headers={"Range": "bytes=2550-"})
    assert (rest.status_code, rest.content) == (206, data[2550:])
    bad = server.client.get(path, headers={"Range": f"bytes={len(data)}-"})
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(data)}"
    assert _error(bad)["code"] == "range_not_satisfiable"
    stale = server.client.get(path, headers={"Range": "bytes=0-0", "If-Range": '"other"'})
    assert (stale.status_code, stale.content) == (200, data)


def test_bad_expired_and_missing_signatures_are_403(server: Server) -> None:
    server.store.put("a/secret.png", b"png", "image/png")
    good = server.signed("a/secret.png")
    path, query = good.split("?")
    cases = {
        "unsigned": path,
        "tampered": good[:-3] + ("xyz" if not good.endswith("xyz") else "abc"),
        "other key": "/api/v1/files/a/other.png?" + query,
        "expired": urlsplit(server.store.signer.url("a/secret.png", 1, now=time.time() - 60)),
        "traversal": "/api/v1/files/a/%2e%2e/secret.png?" + query,
    }
    for name, target in cases.items():
        url = target if isinstance(target, str) else f"{target.path}?{target.query}"
        resp = server.client.get(url)
        assert resp.status_code == 403, name
        error = _error(resp)
        assert error["type"] == "permission_error"
        expected = "signature_expired" if name == "expired" else "invalid_signature"
        assert error["code"] == expected, name
        assert b"png" not in resp.content


def test_a_missing_object_is_404(server: Server) -> None:
    resp = server.client.get(server.signed("a/never-stored.wav"))
    assert resp.status_code == 404
    assert _error(resp)["code"] == "object_not_found"


def test_a_deleted_object_is_gone_even_with_a_valid_url(server: Server) -> None:
    server.store.put("a/temp.wav", b"RIFF", "audio/wav")
    url = server.signed("a/temp.wav")
    assert server.client.get(url).status_code == 200
    server.store.delete("a/temp.wav")
    assert server.client.get(url).status_code == 404

"""S3ObjectStore against moto's S3 server on loopback; the shared checks run on both stores."""

from __future__ import annotations

import calendar
import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from megacity.config.settings import Settings
from megacity.errors import BadRequest, NotFound, ServiceUnavailable, UpstreamError
from megacity.storage import (
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    URLSigner,
    build_object_store,
)
from megacity.testing import free_port

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _s3_store(endpoint: str, bucket: str | None = None, **options: object) -> S3ObjectStore:
    bucket = bucket or f"test-{secrets.token_hex(6)}"
    store = S3ObjectStore(
        bucket,
        endpoint_url=endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        default_ttl_s=60,
        **options,  # type: ignore[arg-type]
    )
    store.client.create_bucket(Bucket=bucket)
    return store


@pytest.fixture
def s3_store(moto_url: str) -> S3ObjectStore:
    """A store on a fresh bucket of its own."""
    return _s3_store(moto_url)


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path, signer: URLSigner) -> ObjectStore:
    """Each test that takes it runs on the local folder and on S3 (moto)."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects", signer)
    store: S3ObjectStore = request.getfixturevalue("s3_store")
    return store


# --- the same behaviour on every store ----------------------------------------------------


def test_round_trip(any_store: ObjectStore) -> None:
    data = b"RIFF....WAVEfmt " * 100
    info = any_store.put("kzone/audio/u1/a.wav", data, "audio/wav")
    assert (info.size, info.content_type) == (len(data), "audio/wav")
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert any_store.get("kzone/audio/u1/a.wav") == data
    assert any_store.stat("kzone/audio/u1/a.wav") == info
    assert any_store.exists("kzone/audio/u1/a.wav")
    assert any_store.delete("kzone/audio/u1/a.wav") is True
    assert any_store.delete("kzone/audio/u1/a.wav") is False
    assert not any_store.exists("kzone/audio/u1/a.wav")


def test_missing_objects_are_not_found(any_store: ObjectStore) -> None:
    for call in (any_store.get, any_store.stat, any_store.open):
        with pytest.raises(NotFound) as exc:
            call("kzone/audio/u1/none.wav")
        assert exc.value.code == "object_not_found" and exc.value.status == 404


def test_overwrite_replaces_content_and_type(any_store: ObjectStore) -> None:
    any_store.put("a/b.bin", b"one", "application/octet-stream")
    info = any_store.put("a/b.bin", b"second", "Text/Plain; charset=utf-8")
    assert any_store.get("a/b.bin") == b"second"
    assert any_store.stat("a/b.bin") == info
    assert info.content_type == "text/plain; charset=utf-8"


def test_open_streams_ranges(any_store: ObjectStore) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: several chunks
    any_store.put("big.bin", data, "application/octet-stream")
    with any_store.open("big.bin") as reader:
        assert b"".join(reader) == data
        assert reader.info.size == len(data)
    with any_store.open("big.bin", 1000, 10) as reader:
        assert (reader.offset, reader.length) == (1000, 10)
        assert reader.info.size == len(data)
        assert reader.read() == data[1000:1010]
    with any_store.open("big.bin", len(data) - 5, 100) as reader:
        assert (reader.length, reader.read()) == (5, data[-5:])
    with any_store.open("big.bin", 7) as reader:
        assert reader.read() == data[7:]
    with any_store.open("big.bin", len(data) + 5) as reader:
        assert reader.length == 0 and reader.read() == b""
    with any_store.open("big.bin", 3, 0) as reader:
        assert reader.length == 0 and reader.read() == b""


def test_list_by_plain_prefix_sorted(any_store: ObjectStore) -> None:
    for key in ["kzone/audio/u2/b.wav", "kzone/audio/u1/a.wav", "kzone/video/u1/c.mp4", "top"]:
        any_store.put(key, b"x", "application/octet-stream")
    assert any_store.list() == [
        "kzone/audio/u1/a.wav",
        "kzone/audio/u2/b.wav",
        "kzone/video/u1/c.mp4",
        "top",
    ]
    assert any_store.list("kzone/audio/") == ["kzone/audio/u1/a.wav", "kzone/audio/u2/b.wav"]
    assert any_store.list("kzone/audio/u1") == ["kzone/audio/u1/a.wav"]
    assert any_store.list("kzone/vi") == ["kzone/video/u1/c.mp4"]
    assert any_store.list("nothing/") == []
    with pytest.raises(BadRequest):
        any_store.list("../")


@pytest.mark.parametrize(
    "key", ["../secret.txt", "/etc/passwd", "a/../../x", "a//b", "a\\b", ".hidden", "a/\x00b", ""]
)
def test_bad_keys_are_refused_before_any_request(
    any_store: ObjectStore, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(any_store, S3ObjectStore):
        monkeypatch.setattr(any_store, "client", None)  # any request would fail differently
    calls = [
        lambda: any_store.put(key, b"x", "text/plain"),
        lambda: any_store.get(key),
        lambda: any_store.open(key, 1, 2),
        lambda: any_store.stat(key),
        lambda: any_store.exists(key),
        lambda: any_store.delete(key),
        lambda: any_store.signed_url(key),
    ]
    for call in calls:
        with pytest.raises(BadRequest) as exc:
            call()
        assert exc.value.code == "invalid_key"


def test_bad_content_types_are_refused(any_store: ObjectStore) -> None:
    with pytest.raises(BadRequest) as exc:
        any_store.put("k", b"x", "text/html\r\nX-Evil: 1")
    assert exc.value.code == "invalid_content_type"
    assert any_store.list() == []


# --- S3 only -----------------------------------------------------------------------------


def test_presigned_url_downloads_with_plain_http(s3_store: S3ObjectStore) -> None:
    s3_store.put("kzone/dance/analyses/a1/heatmap.png", b"\x89PNG-bytes", "image/png")
    url = s3_store.signed_url("kzone/dance/analyses/a1/heatmap.png", 120)
    assert url.startswith(f"{s3_store.endpoint_url}/{s3_store.bucket}/kzone/dance/analyses/")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["120"]  # SigV4: the server refuses it after 120 s
    assert "X-Amz-Signature" in query and SECRET_KEY not in url
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"\x89PNG-bytes"
    assert response.headers["content-type"] == "image/png"
    default = parse_qs(urlsplit(s3_store.signed_url("kzone/dance/analyses/a1/heatmap.png")).query)
    assert default["X-Amz-Expires"] == ["60"]
    with pytest.raises(ValueError):
        s3_store.signed_url("kzone/dance/analyses/a1/heatmap.png", 0)


def test_presigned_urls_expire(s3_store: S3ObjectStore) -> None:
    """Moto does not enforce X-Amz-Expires, so check what S3 checks: date + expiry vs now."""
    s3_store.put("a/b.bin", b"x", "application/octet-stream")
    query = parse_qs(urlsplit(s3_store.signed_url("a/b.bin", 5)).query)
    signed_at = calendar.timegm(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
    assert abs(signed_at - time.time()) < 5
    assert int(query["X-Amz-Expires"][0]) == 5


def test_the_prefix_confines_the_store_to_part_of_the_bucket(moto_url: str) -> None:
    outer = _s3_store(moto_url)
    inner = S3ObjectStore(
        outer.bucket,
        endpoint_url=moto_url,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        prefix="tenant-a",
    )
    inner.put("kzone/audio/u1/a.wav", b"x", "audio/wav")
    outer.put("kzone/audio/u1/b.wav", b"y", "audio/wav")
    assert inner.list() == ["kzone/audio/u1/a.wav"]
    assert outer.list() == ["kzone/audio/u1/b.wav", "tenant-a/kzone/audio/u1/a.wav"]
    assert outer.get("tenant-a/kzone/audio/u1/a.wav") == b"x"
    with pytest.raises(BadRequest):
        S3ObjectStore(outer.bucket, endpoint_url=moto_url, prefix="../x")


def test_objects_written_by_other_tools(s3_store: S3ObjectStore) -> None:
    """No sha256 metadata: hashed once; keys outside the key set are not listed."""
    client = s3_store.client
    client.put_object(Bucket=s3_store.bucket, Key="x/plain.txt", Body=b"hello")
    client.put_object(Bucket=s3_store.bucket, Key="x/with space.txt", Body=b"odd")
    info = s3_store.stat("x/plain.txt")
    assert info.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert s3_store.list("x/") == ["x/plain.txt"]


def test_listing_pages_through_more_than_one_page(
    s3_store: S3ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("megacity.storage.s3._LIST_PAGE", 3)
    keys = [f"kzone/audio/u1/{i:02d}.wav" for i in range(8)]
    for key in reversed(keys):
        s3_store.put(key, b"x", "audio/wav")
    assert s3_store.list("kzone/") == keys


def test_an_unreachable_store_is_a_503_quickly() -> None:
    store = S3ObjectStore(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        connect_timeout_s=1,
        read_timeout_s=1,
        max_attempts=2,
    )
    started = time.monotonic()
    for call in (lambda: store.get("a/b"), lambda: store.put("a/b", b"x", "text/plain")):
        with pytest.raises(ServiceUnavailable) as exc:
            call()
        assert exc.value.status == 503 and exc.value.code == "storage_unavailable"
        assert "'bucket'" in exc.value.message and SECRET_KEY not in exc.value.message
    assert time.monotonic() - started < 10


def test_a_missing_bucket_or_bad_credentials_is_a_502(moto_url: str) -> None:
    store = S3ObjectStore(
        "no-such-bucket", endpoint_url=moto_url, access_key_id="a", secret_access_key="b"
    )
    with pytest.raises(UpstreamError) as exc:
        store.put("a/b", b"x", "text/plain")
    assert exc.value.status == 502 and exc.value.code == "storage_failed"
    assert "NoSuchBucket" in exc.value.message


def test_build_object_store_picks_s3_from_the_environment(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = _s3_store(moto_url).bucket
    monkeypatch.setenv("S3_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("MEGACITY_S3_BUCKET", bucket)
    monkeypatch.setenv("S3_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("S3_REGION", "eu-central-1")
    settings = Settings(data_dir=tmp_path / "var", signed_url_ttl_s=900)
    store = build_object_store(settings)
    assert isinstance(store, S3ObjectStore)
    assert store.bucket == bucket and store.default_ttl_s == 900
    assert store.client.meta.region_name == "eu-central-1"
    assert SECRET_KEY not in repr(settings) and SECRET_KEY not in repr(store)
    store.put("a/b.txt", b"hi", "text/plain")
    assert store.get("a/b.txt") == b"hi"
    assert not (tmp_path / "var").exists()  # no local folder, no key file
    monkeypatch.delenv("MEGACITY_S3_BUCKET")
    with pytest.raises(ValueError, match="S3_BUCKET"):
        build_object_store(Settings(data_dir=tmp_path / "var"))

"""Signed URLs: valid until they expire; a changed key, expiry or signature is refused."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from megacity.config.settings import Settings
from megacity.errors import Forbidden
from megacity.storage.signing import (
    URLSigner,
    load_or_create_key_file,
    public_base_url,
    signing_key,
)

NOW = 1_750_000_000.0


def _parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path.removeprefix("/api/v1/files/"), query["expires"][0], query["signature"][0]


def test_a_signed_url_verifies_until_it_expires(signer: URLSigner) -> None:
    url = signer.url("kzone/dance/references/r1/video.mp4", 60, now=NOW)
    assert url.startswith("http://files.test/api/v1/files/kzone/dance/references/r1/video.mp4?")
    key, expires, signature = _parts(url)
    assert signer.verify(key, expires, signature, now=NOW) == int(NOW) + 60
    assert signer.verify(key, expires, signature, now=NOW + 60) == int(NOW) + 60
    with pytest.raises(Forbidden) as exc:
        signer.verify(key, expires, signature, now=NOW + 61)
    assert exc.value.code == "signature_expired"


@pytest.mark.parametrize("change", ["key", "expires", "signature", "other_secret", "missing"])
def test_tampering_is_refused(signer: URLSigner, change: str) -> None:
    key, expires, signature = _parts(signer.url("a/b.png", 60, now=NOW))
    checker = signer
    if change == "key":
        key = "a/c.png"
    elif change == "expires":
        expires = str(int(expires) + 3600)
    elif change == "signature":
        signature = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    elif change == "other_secret":
        checker = URLSigner(b"another-secret-of-enough-length", "http://files.test")
    else:
        signature = ""
    with pytest.raises(Forbidden) as exc:
        checker.verify(key, expires, signature, now=NOW)
    assert exc.value.code == "invalid_signature"
    assert exc.value.status == 403


@pytest.mark.parametrize("expires", ["-1", "1e10", " 123", "１２３", "9" * 40, "0x10"])
def test_malformed_expiry_is_refused(signer: URLSigner, expires: str) -> None:
    with pytest.raises(Forbidden):
        signer.verify("a", expires, "sig", now=NOW)


def test_short_secrets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        URLSigner(b"short", "http://x")
    settings = Settings(data_dir=tmp_path, url_signing_key=SecretStr("short"))
    with pytest.raises(ValueError, match="MEGACITY_URL_SIGNING_KEY"):
        signing_key(settings)


def test_configured_key_wins_over_the_key_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, url_signing_key=SecretStr("k" * 32))
    assert signing_key(settings) == b"k" * 32
    assert not (tmp_path / "url-signing.key").exists()


def test_racing_processes_agree_on_one_key_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "url-signing.key"
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        results.append(load_or_create_key_file(path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results[0]) == 64
    assert [p.name for p in path.parent.iterdir()] == ["url-signing.key"]  # no temp left


@pytest.mark.parametrize(
    ("host", "port", "public", "expected"),
    [
        ("127.0.0.1", 8000, None, "http://127.0.0.1:8000"),
        ("0.0.0.0", 9000, None, "http://127.0.0.1:9000"),
        ("::", 9000, None, "http://[::1]:9000"),
        ("0.0.0.0", 9000, "https://ai.example.com/router/", "https://ai.example.com/router"),
    ],
)
def test_public_base_url(host: str, port: int, public: str | None, expected: str) -> None:
    assert public_base_url(Settings(host=host, port=port, public_url=public)) == expected

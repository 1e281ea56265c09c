from __future__ import annotations

from pathlib import Path

import pytest

from megacity.storage import LocalObjectStore, URLSigner

SECRET = b"test-signing-key-0123456789abcdef"


@pytest.fixture
def signer() -> URLSigner:
    return URLSigner(SECRET, "http://files.test/", default_ttl_s=60)


@pytest.fixture
def store(tmp_path: Path, signer: URLSigner) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects", signer)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built here see only what the test sets."""
    import os

    for name in list(os.environ):
        if name.startswith("MEGACITY_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)

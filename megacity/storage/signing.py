"""Signed download URLs for the local store: HMAC-SHA256 over the key and the expiry.

The signing key comes from MEGACITY_URL_SIGNING_KEY or, when that is unset, from a
random key generated once and kept in data_dir/url-signing.key (mode 0600), so URLs
survive restarts. Router replicas that share one store must share one key: set it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from megacity.config.settings import Settings
from megacity.errors import Forbidden

KEY_FILE = "url-signing.key"
MIN_KEY_BYTES = 16
FILES_PATH = "/api/v1/files/"
_CONTEXT = b"megacity-file-url-v1\n"  # a signature for this purpose only
_MAX_EXPIRES_DIGITS = 12


class URLSigner:
    """Makes and checks `{base_url}/api/v1/files/{key}?expires=..&signature=..` URLs."""

    def __init__(self, secret: bytes, base_url: str, *, default_ttl_s: int = 3600) -> None:
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(f"the URL signing key must be at least {MIN_KEY_BYTES} bytes")
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.default_ttl_s = default_ttl_s

    def signature(self, key: str, expires: int) -> str:
        """base64url(HMAC-SHA256(secret, context + key + "\\n" + expires)), unpadded."""
        message = _CONTEXT + key.encode("utf-8") + b"\n" + str(expires).encode("ascii")
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def url(self, key: str, ttl_s: int | None = None, *, now: float | None = None) -> str:
        """A URL for `key` valid for `ttl_s` seconds (default: the configured TTL)."""
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise ValueError("ttl_s must be positive")
        expires = int(time.time() if now is None else now) + ttl
        query = urlencode({"expires": expires, "signature": self.signature(key, expires)})
        return f"{self.base_url}{FILES_PATH}{quote(key, safe='/')}?{query}"

    def verify(
        self, key: str, expires: str | None, signature: str | None, *, now: float | None = None
    ) -> int:
        """The expiry (Unix seconds) of a valid, unexpired signature; Forbidden otherwise."""
        if not expires or not signature:
            raise Forbidden("this URL is not signed", code="invalid_signature")
        if not expires.isascii() or not expires.isdigit() or len(expires) > _MAX_EXPIRES_DIGITS:
            raise Forbidden("this URL's signature is not valid", code="invalid_signature")
        expected = self.signature(key, int(expires))
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
            raise Forbidden("this URL's signature is not valid", code="invalid_signature")
        if int(expires) < (time.time() if now is None else now):
            raise Forbidden("this URL has expired", code="signature_expired")
        return int(expires)


def signing_key(settings: Settings) -> bytes:
    """MEGACITY_URL_SIGNING_KEY, or the key kept in data_dir (generated on first use)."""
    if settings.url_signing_key is not None:
        secret = settings.url_signing_key.get_secret_value().encode("utf-8")
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(
                f"MEGACITY_URL_SIGNING_KEY must be at least {MIN_KEY_BYTES} characters"
            )
        return secret
    return load_or_create_key_file(Path(settings.data_dir) / KEY_FILE)


def load_or_create_key_file(path: Path) -> bytes:
    """Read the key file, or create it (0600) with 32 random bytes; safe when racing."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_hex(32).encode("ascii") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        # link() fails when the file exists: a process starting at the same time wins
        # and both then use its key; the file is never seen half-written.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    secret = path.read_bytes().strip()
    if len(secret) < MIN_KEY_BYTES:
        raise ValueError(f"{path}: the URL signing key is shorter than {MIN_KEY_BYTES} bytes")
    return secret


def public_base_url(settings: Settings) -> str:
    """MEGACITY_PUBLIC_URL, or http://host:port (a wildcard host becomes loopback)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"

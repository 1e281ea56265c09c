"""The object store interface every backend implements (local folder now, S3 later).

Methods are synchronous: the I/O is a file or a blocking HTTP client, and async callers
run them in a thread (`await asyncio.to_thread(store.put, ...)`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

from megacity.errors import BadRequest

DEFAULT_CONTENT_TYPE = "application/octet-stream"
CHUNK_BYTES = 256 * 1024

_TOKEN = r"[A-Za-z0-9!#$&^_.+-]{1,127}"
_CONTENT_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[ -~]{{0,64}}\"))*")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows about one object: size in bytes, hex SHA-256, content type."""

    key: str
    size: int
    sha256: str
    content_type: str


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class ObjectReader:
    """An open object (or a byte range of it): iterate for chunks, or read(); then close."""

    def __init__(self, info: ObjectInfo, stream: Readable, *, offset: int, length: int) -> None:
        self.info = info
        self.offset = offset
        self.length = length  # bytes this reader delivers, from `offset`
        self._stream = stream
        self._left = length

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all that is left when negative); b"" at the end."""
        want = self._left if size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        data = self._stream.read(want)
        self._left -= len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_BYTES):
            yield chunk

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class ObjectStore(Protocol):
    """Bytes under checked keys (see keys.py); NotFound for a missing key."""

    def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        """Store `data` under `key` atomically (replacing any object there)."""
        ...

    def get(self, key: str) -> bytes:
        """The whole object."""
        ...

    def open(self, key: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        """A stream of the object, or of `length` bytes from `offset` (clamped to its size)."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size, SHA-256 and content type without reading the object."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """Remove the object; False when there was none."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Every key starting with `prefix` (plain string prefix, as S3), sorted."""
        ...

    def signed_url(self, key: str, ttl_s: int | None = None) -> str:
        """A URL anyone holding it can GET the object with for `ttl_s` seconds."""
        ...


def check_content_type(content_type: str) -> str:
    """A MIME type such as "audio/wav" or "text/plain; charset=utf-8", lower-cased type."""
    value = content_type.strip() if isinstance(content_type, str) else ""
    if len(value) > 255 or not _CONTENT_TYPE.fullmatch(value):
        raise BadRequest(
            "invalid content type (expected type/subtype)",
            code="invalid_content_type",
            param="content_type",
        )
    mime, sep, params = value.partition(";")
    return mime.strip().lower() + (sep + params if sep else "")

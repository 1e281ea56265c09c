"""LocalObjectStore: objects as files under one root folder (the embedded default).

Writes are atomic: a temp file in the object's folder, fsync, os.replace, fsync of the
folder. Each object has a sidecar ".{name}.meta" (JSON: content type, SHA-256, size,
mtime) written just before the object; a sidecar whose size and mtime do not match the
file (a crash between the two renames, a concurrent put) is ignored, and the type is
then guessed from the extension and the hash recomputed. Key segments never start with
".", so no key reaches a sidecar or temp file. Folders are created 0700, files 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mimetypes
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from megacity.errors import BadRequest, NotFound
from megacity.storage.base import (
    CHUNK_BYTES,
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectReader,
    check_content_type,
)
from megacity.storage.keys import validate_key, validate_prefix
from megacity.storage.signing import URLSigner

_PUT_ATTEMPTS = 3  # a delete may prune an empty folder between mkdir and the temp file


class LocalObjectStore:
    """An ObjectStore on a local folder; signed URLs point at the router's /api/v1/files."""

    def __init__(self, root: Path, signer: URLSigner) -> None:
        root = Path(root).absolute()
        root.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            root.mkdir(mode=0o700)
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise NotADirectoryError(f"object store root {self.root} is not a folder")
        self.signer = signer

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # --- ObjectStore ---------------------------------------------------------------------

    def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        content_type = check_content_type(content_type)
        path = self._path(key)
        info = ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest(), content_type)
        tmp, mtime_ns = self._write_temp(path, data)
        try:
            self._write_sidecar(path, info, mtime_ns)
            os.replace(tmp, path)
        except IsADirectoryError:
            raise _conflict(key) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_dir(path.parent)
        return info

    def get(self, key: str) -> bytes:
        with self.open(key) as reader:
            return reader.read()

    def open(self, key: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        path = self._path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - the reader owns and closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise _missing(key) from None
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise _missing(key)
            info = self._info(key, path, st, f)
            start = min(offset, st.st_size)
            size = st.st_size - start if length is None else min(length, st.st_size - start)
            f.seek(start)
        except BaseException:
            f.close()
            raise
        return ObjectReader(info, f, offset=start, length=size)

    def stat(self, key: str) -> ObjectInfo:
        with self.open(key) as reader:
            return reader.info

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_sidecar(path))
        _fsync_dir(path.parent)
        self._prune(path.parent)
        return True

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        start = Path(os.path.realpath(self.root / folder)) if folder else self.root
        if not _inside(self.root, start, allow_root=True) or not start.is_dir():
            return []
        found: list[str] = []
        _walk(start, f"{folder}/" if folder else "", found)
        return sorted(k for k in found if k.startswith(prefix))

    def signed_url(self, key: str, ttl_s: int | None = None) -> str:
        return self.signer.url(validate_key(key), ttl_s)

    # --- files ---------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file of a key; strictly inside root even through symlinks (defence in depth)."""
        validate_key(key)
        path = Path(os.path.realpath(self.root / key))
        if not _inside(self.root, path):
            raise BadRequest("invalid object key: outside the store", code="invalid_key")
        return path

    def _write_temp(self, path: Path, data: bytes) -> tuple[str, int]:
        """A durable temp file beside `path`, holding `data`; its name and mtime (ns)."""
        for attempt in range(_PUT_ATTEMPTS):
            self._make_dirs(path.parent)
            try:
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            except FileNotFoundError:
                if attempt == _PUT_ATTEMPTS - 1:
                    raise
                continue
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                    return tmp, os.fstat(f.fileno()).st_mtime_ns
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        raise AssertionError("unreachable")

    def _write_sidecar(self, path: Path, info: ObjectInfo, mtime_ns: int) -> None:
        meta = {
            "content_type": info.content_type,
            "sha256": info.sha256,
            "size": info.size,
            "mtime_ns": mtime_ns,
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(meta).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, _sidecar(path))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _info(self, key: str, path: Path, st: os.stat_result, f: Any) -> ObjectInfo:
        """The sidecar's description when it matches the open file, else derived from it."""
        meta = _read_sidecar(path)
        if meta is not None and meta["size"] == st.st_size and meta["mtime_ns"] == st.st_mtime_ns:
            return ObjectInfo(key, st.st_size, meta["sha256"], meta["content_type"])
        digest = hashlib.sha256()
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
        guessed = mimetypes.guess_type(path.name, strict=False)[0] or DEFAULT_CONTENT_TYPE
        return ObjectInfo(key, st.st_size, digest.hexdigest(), guessed)

    def _make_dirs(self, folder: Path) -> None:
        """Create `folder` and its parents below root, each 0700."""
        current = self.root
        for part in folder.relative_to(self.root).parts:
            current = current / part
            try:
                current.mkdir(mode=0o700)
            except FileExistsError:
                if not current.is_dir():
                    key = str(folder.relative_to(self.root))
                    raise _conflict(key) from None

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty by a delete, up to (not including) root."""
        while folder != self.root and _inside(self.root, folder):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.meta")


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(_sidecar(path).read_bytes())
    except (OSError, ValueError):
        return None
    fields = {"content_type": str, "sha256": str, "size": int, "mtime_ns": int}
    if not isinstance(meta, dict) or any(not isinstance(meta.get(k), t) for k, t in fields.items()):
        return None
    return meta


def _walk(folder: Path, prefix: str, found: list[str]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue  # sidecars, temp files
            if entry.is_dir(follow_symlinks=False):
                _walk(Path(entry.path), f"{prefix}{entry.name}/", found)
            elif entry.is_file(follow_symlinks=False):
                found.append(prefix + entry.name)


def _inside(root: Path, path: Path, *, allow_root: bool = False) -> bool:
    return (allow_root and path == root) or (path.is_relative_to(root) and path != root)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _missing(key: str) -> NotFound:
    return NotFound(f"no object with key {key!r}", code="object_not_found", param="key")


def _conflict(key: str) -> BadRequest:
    return BadRequest(
        f"invalid object key: {key!r} clashes with an existing object or folder",
        code="invalid_key",
        param="key",
    )

"""LocalObjectStore: round trips, sidecar content types, atomic writes, root confinement."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from megacity.errors import BadRequest, NotFound
from megacity.storage import LocalObjectStore, ObjectStore, URLSigner, build_object_store
from megacity.storage.signing import KEY_FILE


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_put_get_stat_delete_round_trip(store: LocalObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    data = b"RIFF....WAVEfmt " * 100
    info = store.put("kzone/audio/u1/a.wav", data, "audio/wav")
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.content_type == "audio/wav"
    assert store.get("kzone/audio/u1/a.wav") == data
    assert store.stat("kzone/audio/u1/a.wav") == info
    assert store.exists("kzone/audio/u1/a.wav")
    assert store.delete("kzone/audio/u1/a.wav") is True
    assert store.delete("kzone/audio/u1/a.wav") is False
    assert not store.exists("kzone/audio/u1/a.wav")
    with pytest.raises(NotFound):
        store.get("kzone/audio/u1/a.wav")
    with pytest.raises(NotFound):
        store.stat("kzone/audio/u1/a.wav")
    assert list(store.root.iterdir()) == []  # empty folders pruned, no sidecar left


def test_overwrite_replaces_content_and_type(store: LocalObjectStore) -> None:
    store.put("a/b.bin", b"one", "application/octet-stream")
    info = store.put("a/b.bin", b"second", "Text/Plain; charset=utf-8")
    assert store.get("a/b.bin") == b"second"
    assert store.stat("a/b.bin") == info
    assert info.content_type == "text/plain; charset=utf-8"


def test_content_type_survives_a_new_store_on_the_same_root(
    store: LocalObjectStore, signer: URLSigner
) -> None:
    store.put("x/keypoints.npz", b"\x93NUMPY", "application/x-npz")
    again = LocalObjectStore(store.root, signer)
    assert again.stat("x/keypoints.npz").content_type == "application/x-npz"


def test_a_stale_sidecar_is_ignored(store: LocalObjectStore) -> None:
    """A crash between the sidecar and the object rename: the type is derived instead."""
    store.put("v/clip.mp4", b"old-bytes", "video/mp4")
    store.put("v/other.bin", b"new", "application/x-custom")
    sidecar = store.root / "v" / ".other.bin.meta"
    os.replace(sidecar, store.root / "v" / ".clip.mp4.meta")  # describes other bytes now
    info = store.stat("v/clip.mp4")
    assert info.content_type == "video/mp4"  # guessed from the extension
    assert info.sha256 == hashlib.sha256(b"old-bytes").hexdigest()
    assert store.stat("v/other.bin").content_type == "application/octet-stream"


@pytest.mark.parametrize("content_type", ["", "text", "text/html\r\nX-Evil: 1", "a/b/c", "é/x"])
def test_bad_content_types_are_refused(store: LocalObjectStore, content_type: str) -> None:
    with pytest.raises(BadRequest) as exc:
        store.put("k", b"x", content_type)
    assert exc.value.code == "invalid_content_type"
    assert store.list() == []


def test_list_by_prefix_sorted_without_sidecars(store: LocalObjectStore) -> None:
    for key in ["kzone/audio/u2/b.wav", "kzone/audio/u1/a.wav", "kzone/video/u1/c.mp4", "top"]:
        store.put(key, b"x", "application/octet-stream")
    assert store.list() == [
        "kzone/audio/u1/a.wav",
        "kzone/audio/u2/b.wav",
        "kzone/video/u1/c.mp4",
        "top",
    ]
    assert store.list("kzone/audio/") == ["kzone/audio/u1/a.wav", "kzone/audio/u2/b.wav"]
    assert store.list("kzone/audio/u1") == ["kzone/audio/u1/a.wav"]
    assert store.list("kzone/vi") == ["kzone/video/u1/c.mp4"]
    assert store.list("t") == ["top"]
    assert store.list("nothing/") == []
    with pytest.raises(BadRequest):
        store.list("../")


def test_open_streams_ranges(store: LocalObjectStore) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: several chunks
    store.put("big.bin", data, "application/octet-stream")
    with store.open("big.bin") as reader:
        assert b"".join(reader) == data
    with store.open("big.bin", 1000, 10) as reader:
        assert (reader.offset, reader.length) == (1000, 10)
        assert reader.read() == data[1000:1010]
    with store.open("big.bin", len(data) - 5, 100) as reader:
        assert reader.read() == data[-5:]
    with store.open("big.bin", len(data) + 5) as reader:
        assert reader.length == 0 and reader.read() == b""


def test_a_failed_write_leaves_no_partial_file(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("a/obj.bin", b"original", "application/x-original")
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        store.put("a/obj.bin", b"new content that never lands", "text/plain")
    with pytest.raises(OSError, match="No space"):
        store.put("a/fresh.bin", b"never visible", "text/plain")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert store.get("a/obj.bin") == b"original"
    assert store.stat("a/obj.bin").content_type == "application/x-original"
    assert not store.exists("a/fresh.bin")
    assert sorted(p.name for p in (store.root / "a").iterdir()) == [".obj.bin.meta", "obj.bin"]


def test_a_failed_rename_leaves_the_old_object(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("a/obj.bin", b"original", "application/x-original")
    real_replace = os.replace

    def failing_replace(src: str, dst: str | Path) -> None:
        if str(dst).endswith("obj.bin"):
            raise OSError(5, "I/O error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="I/O error"):
        store.put("a/obj.bin", b"replacement", "text/plain")
    monkeypatch.setattr(os, "replace", real_replace)
    assert store.get("a/obj.bin") == b"original"
    info = store.stat("a/obj.bin")  # the sidecar was replaced first: it no longer matches
    assert info.sha256 == hashlib.sha256(b"original").hexdigest()
    assert not any(p.name.endswith(".tmp") for p in (store.root / "a").iterdir())


def test_modes_are_private(store: LocalObjectStore) -> None:
    store.put("kzone/audio/u1/a.wav", b"x", "audio/wav")
    assert _mode(store.root) == 0o700
    assert _mode(store.root / "kzone") == 0o700
    assert _mode(store.root / "kzone" / "audio" / "u1") == 0o700
    assert _mode(store.root / "kzone" / "audio" / "u1" / "a.wav") == 0o600
    assert _mode(store.root / "kzone" / "audio" / "u1" / ".a.wav.meta") == 0o600


def test_files_outside_root_are_unreachable(store: LocalObjectStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (store.root / "link").symlink_to(tmp_path)  # planted by someone with file access
    (store.root / "file-link").symlink_to(secret)
    for key in ["link/secret.txt", "file-link"]:
        with pytest.raises(BadRequest, match="outside the store"):
            store.get(key)
        with pytest.raises(BadRequest):
            store.put(key, b"overwrite", "text/plain")
        with pytest.raises(BadRequest):
            store.delete(key)
    for key in ["../secret.txt", "/etc/passwd", "a/../../secret.txt"]:
        with pytest.raises(BadRequest):
            store.get(key)
    assert store.list("link/") == []
    assert store.list() == []  # symlinks are not objects
    assert secret.read_text() == "top secret"


def test_a_key_clashing_with_a_folder_is_refused(store: LocalObjectStore) -> None:
    store.put("a/b/c", b"x", "text/plain")
    with pytest.raises(BadRequest, match="clashes"):
        store.put("a/b", b"y", "text/plain")
    with pytest.raises(BadRequest, match="clashes"):
        store.put("a/b/c/d", b"z", "text/plain")
    with pytest.raises(NotFound):
        store.get("a/b")
    assert store.list() == ["a/b/c"]


def test_build_object_store_defaults_to_data_dir(tmp_path: Path) -> None:
    from megacity.config.settings import Settings

    settings = Settings(data_dir=tmp_path / "var", port=8123)
    store = build_object_store(settings)
    assert isinstance(store, LocalObjectStore)
    assert store.root == (tmp_path / "var" / "objects").resolve()
    key_file = tmp_path / "var" / KEY_FILE
    assert _mode(key_file) == 0o600
    url = store.signed_url("a/b.png", 30)
    assert url.startswith("http://127.0.0.1:8123/api/v1/files/a/b.png?expires=")
    # A restart reads the same key: yesterday's URLs still verify.
    assert build_object_store(settings).signed_url("a/b.png", 30) == url

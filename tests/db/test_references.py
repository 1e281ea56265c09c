"""Dance references and stored objects on SQLite and PostgreSQL: CRUD, order, integrity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from megacity.config.settings import Settings
from megacity.db import Database, StoredObject, build_database, database_url, default_database_url
from megacity.db.objects import get_object, record_object
from megacity.db.references import (
    create_reference,
    delete_reference,
    get_reference,
    list_references,
    new_reference_id,
)
from megacity.errors import NotFound
from megacity.storage import Kind, ObjectInfo
from megacity.storage.keys import reference_keypoints_key, reference_video_key

T0 = datetime(2025, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _info(key: str, size: int = 10) -> ObjectInfo:
    return ObjectInfo(key, size, "ab" * 32, "application/x-npz")


def _create(
    db: Database, *, at: datetime = T0, video: bool = False, owner: str | None = None
) -> str:
    rid = new_reference_id()
    with db.session() as s:
        create_reference(
            s,
            rid,
            title=f"Ref {rid[:6]}",
            fps=30.0,
            frames=90,
            duration_s=3.0,
            width=1280,
            height=720,
            keypoints=_info(reference_keypoints_key(rid).key),
            video=_info(reference_video_key(rid).key, 5_000_000_000) if video else None,
            bpm=120.0,
            owner_id=owner,
            now=at,
        )
    return rid


def test_create_get_and_read_back(db: Database) -> None:
    rid = _create(db, video=True, owner="user-7")
    assert len(rid) == 32 and int(rid, 16) >= 0
    with db.session() as s:
        ref = get_reference(s, rid)
    assert (ref.title, ref.bpm, ref.owner_id, ref.fps, ref.frames) == (
        f"Ref {rid[:6]}",
        120.0,
        "user-7",
        30.0,
        90,
    )
    assert (ref.duration_s, ref.width, ref.height) == (3.0, 1280, 720)
    assert ref.keypoints_key == f"kzone/dance/references/{rid}/keypoints.npz"
    assert ref.video_key == f"kzone/dance/references/{rid}/video.mp4"
    assert ref.created_at == T0 and ref.created_at.tzinfo is UTC
    with db.session() as s:
        video = get_object(s, ref.video_key)
        assert video is not None
        assert (video.kind, video.size, video.owner_id) == ("video", 5_000_000_000, "user-7")
        assert video.expires_at is None
        keypoints = get_object(s, ref.keypoints_key)
        assert keypoints is not None and keypoints.kind == "keypoints"


def test_get_a_missing_reference_is_not_found(db: Database) -> None:
    with db.session() as s, pytest.raises(NotFound) as exc:
        get_reference(s, "0" * 32)
    assert exc.value.code == "reference_not_found"


def test_list_is_newest_first_with_paging_and_owner(db: Database) -> None:
    ids = [
        _create(db, at=T0 + timedelta(minutes=i), owner="u1" if i % 2 else None) for i in range(5)
    ]
    with db.session() as s:
        assert [r.id for r in list_references(s)] == ids[::-1]
        assert [r.id for r in list_references(s, limit=2, offset=1)] == [ids[3], ids[2]]
        assert [r.id for r in list_references(s, owner_id="u1")] == [ids[3], ids[1]]
        assert list_references(s, offset=10) == []
        with pytest.raises(ValueError):
            list_references(s, limit=0)


def test_delete_returns_the_keys_and_removes_the_rows(db: Database) -> None:
    rid = _create(db, video=True)
    keep = _create(db)
    with db.session() as s:
        keys = delete_reference(s, rid)
    assert keys == [reference_keypoints_key(rid).key, reference_video_key(rid).key]
    with db.session() as s:
        with pytest.raises(NotFound):
            get_reference(s, rid)
        remaining = set(s.scalars(select(StoredObject.key)))
        assert remaining == {reference_keypoints_key(keep).key}
        with pytest.raises(NotFound):
            delete_reference(s, rid)


def test_a_referenced_object_cannot_be_removed_alone(db: Database) -> None:
    """What a retention sweep will meet: the foreign key protects a reference's objects."""
    rid = _create(db)
    with pytest.raises(IntegrityError), db.session() as s:
        row = get_object(s, reference_keypoints_key(rid).key)
        assert row is not None
        s.delete(row)
    with db.session() as s:
        assert get_reference(s, rid).keypoints_key == reference_keypoints_key(rid).key


def test_a_failed_session_rolls_back(db: Database) -> None:
    rid = new_reference_id()
    with pytest.raises(RuntimeError), db.session() as s:
        record_object(s, _info(reference_keypoints_key(rid).key), Kind.KEYPOINTS)
        raise RuntimeError("boom")
    with db.session() as s:
        assert get_object(s, reference_keypoints_key(rid).key) is None


def test_record_object_updates_a_key_stored_again(db: Database) -> None:
    later = T0 + timedelta(days=30)
    with db.session() as s:
        record_object(s, _info("kzone/dance/analyses/a1/overlay.png", 1), Kind.IMAGE, now=T0)
    with db.session() as s:
        record_object(
            s,
            _info("kzone/dance/analyses/a1/overlay.png", 2),
            Kind.IMAGE,
            owner_id="u2",
            expires_at=later.astimezone(timezone(timedelta(hours=9))),  # KST in, UTC out
        )
    with db.session() as s:
        row = get_object(s, "kzone/dance/analyses/a1/overlay.png")
        assert row is not None
        assert (row.size, row.owner_id, row.created_at) == (2, "u2", T0)
        assert row.expires_at == later and row.expires_at.tzinfo is UTC


def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), db.session() as s:
        record_object(s, _info("x/y"), Kind.IMAGE, expires_at=datetime(2030, 1, 1))


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@db:5432/app", "postgresql+psycopg"),
        ("postgres://u:p@db/app", "postgresql+psycopg"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg"),
        ("sqlite:////tmp/x.db", "sqlite"),
    ],
)
def test_database_urls_map_to_psycopg(given: str, driver: str) -> None:
    assert database_url(given).drivername == driver


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "not a url", ""])
def test_unsupported_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        database_url(bad)


def test_build_database_defaults_to_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    assert default_database_url(settings) == f"sqlite:///{tmp_path}/var/megacity.db"
    db = build_database(settings)
    try:
        assert db.upgrade().after == "0006_scale"
        assert (tmp_path / "var" / "megacity.db").is_file()
        assert "***" in repr(Database("postgresql://u:secret@h/db"))
    finally:
        db.close()
    url = "postgresql://u:p@h/db"
    assert default_database_url(Settings(data_dir=tmp_path, database_url=url)) == url


def test_one_database_shared_by_threads_writing_at_once(db: Database) -> None:
    """Handlers run repository calls in worker threads; SQLite must queue, not fail."""
    import threading

    created: list[str] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        try:
            for _ in range(8):
                created.append(_create(db))
                with db.session() as s:
                    list_references(s, limit=5)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    with db.session() as s:
        assert len(list_references(s, limit=100)) == len(created) == 32

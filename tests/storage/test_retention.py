"""Retention: the policy from the environment, and the sweep on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from megacity.config.retention import DEFAULT_RULES, KINDS, RetentionPolicy
from megacity.config.settings import Settings
from megacity.db import Database, StoredObject
from megacity.db.objects import record_object
from megacity.db.references import create_reference
from megacity.errors import ServiceUnavailable
from megacity.jobs import JobService, default_handlers
from megacity.jobs.chores import build_chores
from megacity.storage import Kind, LocalObjectStore, ObjectInfo
from megacity.storage.retention import SweepReport, sweep, sweep_periodically
from tests.db import conftest as _db_fixtures

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = RetentionPolicy()

# The database fixtures of tests/db: a migrated SQLite file, and the session's PostgreSQL.
pg_admin_url = _db_fixtures.pg_admin_url
pg_migrated = _db_fixtures.pg_migrated
db = _db_fixtures.db


def _put(
    db: Database,
    store: LocalObjectStore,
    key: str,
    kind: Kind,
    *,
    age: timedelta,
    expires_at: datetime | None = None,
    size: int = 10,
) -> ObjectInfo:
    info = store.put(key, b"x" * size, "application/octet-stream")
    with db.session() as session:
        record_object(session, info, kind, expires_at=expires_at, now=NOW - age)
    return info


def _rows(db: Database) -> dict[str, datetime | None]:
    with db.session() as session:
        return {row.key: row.expires_at for row in session.query(StoredObject)}


# --- the policy ---------------------------------------------------------------------------


def test_the_default_policy_covers_every_kind() -> None:
    assert set(KINDS) == {kind.value for kind in Kind} == set(DEFAULT_RULES)
    days = {kind: POLICY.rule(kind).retention_days for kind in KINDS}  # type: ignore[union-attr]
    assert days == {
        "audio": 30,
        "video": 90,
        "image": 90,
        "keypoints": None,
        "attachment": None,
        "profile": None,
        "model": None,
        "generated": 90,
        "contour": None,
    }
    assert POLICY.rule("unknown") is None


def test_the_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "MEGACITY_RETENTION",
        '{"audio": {"retention_days": 7}, "model": {"retention_days": 365, "backup": false}}',
    )
    policy = Settings().retention
    assert policy.audio.retention_days == 7
    assert policy.audio.location == DEFAULT_RULES["audio"].location  # kept from the default
    assert (policy.model.retention_days, policy.model.backup) == (365, False)
    assert policy.video == DEFAULT_RULES["video"]
    for bad in ['{"audoi": {}}', '{"audio": {"days": 3}}', '{"audio": {"retention_days": -1}}']:
        monkeypatch.setenv("MEGACITY_RETENTION", bad)
        with pytest.raises(ValidationError):
            Settings()


# --- the sweep ----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, signer: object) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects", signer)  # type: ignore[arg-type]


def test_sweep_deletes_what_is_due_and_nothing_else(db: Database, store: LocalObjectStore) -> None:
    _put(db, store, "kzone/audio/u1/old.wav", Kind.AUDIO, age=31 * DAY, size=100)
    _put(db, store, "kzone/audio/u1/edge.wav", Kind.AUDIO, age=30 * DAY, size=50)  # exactly due
    _put(db, store, "kzone/audio/u1/young.wav", Kind.AUDIO, age=29 * DAY)
    _put(db, store, "kzone/video/u1/old.mp4", Kind.VIDEO, age=91 * DAY, size=1000)
    _put(db, store, "kzone/video/u1/young.mp4", Kind.VIDEO, age=89 * DAY)
    _put(db, store, "ai-models/m/v1/w.bin", Kind.MODEL, age=3000 * DAY)  # permanent
    # A row's own expiry wins over its kind's rule, both ways.
    _put(db, store, "ai-models/m/v0/w.bin", Kind.MODEL, age=DAY, expires_at=NOW, size=7)
    _put(db, store, "kzone/audio/u2/kept.wav", Kind.AUDIO, age=99 * DAY, expires_at=NOW + DAY)

    report = sweep(db, store, POLICY, now=NOW)

    gone = {"kzone/audio/u1/old.wav", "kzone/audio/u1/edge.wav", "kzone/video/u1/old.mp4"}
    gone.add("ai-models/m/v0/w.bin")
    assert set(report.keys) == gone
    assert {k: (t.count, t.bytes) for k, t in report.kinds.items()} == {
        "audio": (2, 150),
        "video": (1, 1000),
        "model": (1, 7),
    }
    assert (report.count, report.bytes, report.ok) == (4, 1157, True)
    kept = {
        "kzone/audio/u1/young.wav",
        "kzone/video/u1/young.mp4",
        "ai-models/m/v1/w.bin",
        "kzone/audio/u2/kept.wav",
    }
    assert set(_rows(db)) == kept
    assert set(store.list()) == kept
    assert sweep(db, store, POLICY, now=NOW).count == 0  # nothing left to do
    later = sweep(db, store, POLICY, now=NOW + 2 * DAY)
    assert set(later.keys) == kept - {"ai-models/m/v1/w.bin"}


def test_a_dry_run_deletes_nothing_and_lists_the_keys(
    db: Database, store: LocalObjectStore
) -> None:
    _put(db, store, "kzone/audio/u1/old.wav", Kind.AUDIO, age=40 * DAY, size=5)
    _put(db, store, "kzone/audio/u1/young.wav", Kind.AUDIO, age=DAY)
    report = sweep(db, store, POLICY, now=NOW, dry_run=True)
    assert report.keys == ["kzone/audio/u1/old.wav"] and report.bytes == 5
    assert "  would delete kzone/audio/u1/old.wav" in report.lines()
    assert _rows(db) == {"kzone/audio/u1/old.wav": None, "kzone/audio/u1/young.wav": None}
    assert store.exists("kzone/audio/u1/old.wav")


def test_objects_a_reference_points_at_are_kept(db: Database, store: LocalObjectStore) -> None:
    keypoints = store.put("kzone/dance/references/r1/keypoints.npz", b"k", "application/x-npz")
    video = store.put("kzone/dance/references/r1/video.mp4", b"v", "video/mp4")
    with db.session() as session:
        create_reference(
            session,
            "r1",
            title="t",
            fps=15,
            frames=1,
            duration_s=1,
            width=1,
            height=1,
            keypoints=keypoints,
            video=video,
            now=NOW - 400 * DAY,
        )
        session.get(StoredObject, keypoints.key).expires_at = NOW - DAY  # type: ignore[union-attr]
    report = sweep(db, store, POLICY, now=NOW)
    assert report.count == 0 and report.ok
    assert sorted(report.referenced) == sorted([keypoints.key, video.key])
    assert any("a dance reference points at it" in line for line in report.lines())
    assert store.exists(video.key) and store.exists(keypoints.key)
    assert _rows(db)[video.key] is None  # not tombstoned


def test_a_reference_appearing_during_the_sweep_keeps_its_object(
    db: Database, store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The foreign key refuses the row delete: the object stays, the tombstone is undone."""
    video = _put(db, store, "kzone/dance/references/r2/video.mp4", Kind.VIDEO, age=100 * DAY)
    keypoints = store.put("kzone/dance/references/r2/keypoints.npz", b"k", "application/x-npz")
    with db.session() as session:
        create_reference(
            session,
            "r2",
            title="t",
            fps=15,
            frames=1,
            duration_s=1,
            width=1,
            height=1,
            keypoints=keypoints,
            video=video,
            now=NOW - 100 * DAY,
        )
    monkeypatch.setattr("megacity.storage.retention.referenced_keys", lambda s, keys: set())
    report = sweep(db, store, POLICY, now=NOW)
    assert report.referenced == [video.key] and report.count == 0
    assert store.exists(video.key) and _rows(db)[video.key] is None


def test_a_store_failure_keeps_the_row_for_the_next_sweep(
    db: Database, store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(db, store, "kzone/audio/u1/a.wav", Kind.AUDIO, age=40 * DAY)
    real_delete = store.delete

    def failing_delete(key: str) -> bool:
        raise ServiceUnavailable("the object store is unavailable", code="storage_unavailable")

    monkeypatch.setattr(store, "delete", failing_delete)
    report = sweep(db, store, POLICY, now=NOW)
    assert not report.ok and "unavailable" in report.failed["kzone/audio/u1/a.wav"]
    assert report.count == 0
    assert _rows(db) == {"kzone/audio/u1/a.wav": NOW}  # tombstoned: reads as gone
    monkeypatch.setattr(store, "delete", real_delete)
    assert sweep(db, store, POLICY, now=NOW + DAY).keys == ["kzone/audio/u1/a.wav"]
    assert _rows(db) == {} and store.list() == []


def test_a_crash_after_the_store_delete_leaves_an_expired_row(
    db: Database, store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(db, store, "kzone/audio/u1/a.wav", Kind.AUDIO, age=40 * DAY, size=3)
    real_delete = store.delete

    def crashing_delete(key: str) -> bool:
        real_delete(key)
        raise SystemExit("killed")  # the process dies before the commit

    monkeypatch.setattr(store, "delete", crashing_delete)
    with pytest.raises(SystemExit):
        sweep(db, store, POLICY, now=NOW)
    assert _rows(db) == {"kzone/audio/u1/a.wav": NOW}  # expired, so not present
    assert not store.exists("kzone/audio/u1/a.wav")
    monkeypatch.setattr(store, "delete", real_delete)
    report = sweep(db, store, POLICY, now=NOW + DAY)
    assert report.keys == report.missing == ["kzone/audio/u1/a.wav"]
    assert _rows(db) == {}


def test_an_object_stored_again_is_not_deleted(
    db: Database, store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored again (a new expiry) between the tombstone and the delete: kept."""
    import megacity.storage.retention as retention

    info = _put(db, store, "kzone/audio/u1/a.wav", Kind.AUDIO, age=40 * DAY)
    real_delete_one = retention._delete

    def stored_again_first(*args: Any, **kwargs: Any) -> None:
        with db.session() as session:
            record_object(session, info, Kind.AUDIO, expires_at=NOW + 10 * DAY)
        real_delete_one(*args, **kwargs)

    monkeypatch.setattr(retention, "_delete", stored_again_first)
    report = sweep(db, store, POLICY, now=NOW)
    assert report.count == 0 and report.ok
    assert store.exists("kzone/audio/u1/a.wav")
    assert _rows(db) == {"kzone/audio/u1/a.wav": NOW + 10 * DAY}


def test_many_due_objects_in_several_batches_and_orphans(
    db: Database, store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("megacity.storage.retention.BATCH", 4)
    for i in range(10):
        _put(db, store, f"kzone/audio/u1/{i:02d}.wav", Kind.AUDIO, age=(25 + i) * DAY)
    store.put("kzone/audio/u9/stray.wav", b"s", "audio/wav")  # no row
    report = sweep(db, store, POLICY, now=NOW, find_orphans=True)
    assert report.keys == [f"kzone/audio/u1/{i:02d}.wav" for i in range(5, 10)]
    assert report.orphans == ["kzone/audio/u9/stray.wav"]
    assert "  orphan: kzone/audio/u9/stray.wav" in report.lines()
    assert store.exists("kzone/audio/u9/stray.wav")  # reported, never deleted
    assert len(_rows(db)) == 5


def test_sweep_periodically_until_stopped(db: Database, store: LocalObjectStore) -> None:
    _put(db, store, "kzone/audio/u1/a.wav", Kind.AUDIO, age=400 * DAY)  # due by the real clock
    reports: list[SweepReport] = []

    async def run() -> None:
        stop = asyncio.Event()

        def seen(report: SweepReport) -> None:
            reports.append(report)
            if len(reports) == 2:
                stop.set()

        await asyncio.wait_for(
            sweep_periodically(db, store, POLICY, interval_s=0.01, stop=stop, on_report=seen), 10
        )

    asyncio.run(run())
    assert [r.count for r in reports] == [1, 0]


def test_the_workers_periodic_sweep_runs_on_its_clock(
    db: Database, store: LocalObjectStore
) -> None:
    due = _put(db, store, "kzone/audio/u1/due.wav", Kind.AUDIO, age=31 * DAY)  # audio: 30 days
    young = _put(db, store, "kzone/audio/u1/young.wav", Kind.AUDIO, age=29 * DAY)
    settings = Settings(retention_sweep_interval_s=0.05)
    assert JobService.from_settings(settings, db, default_handlers(), store=store).chores
    runs: list[datetime] = []

    def clock() -> datetime:  # NOW, whatever the real date: the sweep goes by this clock
        runs.append(NOW)
        return NOW

    async def run() -> None:
        chores = build_chores(settings, db, store=store, clock=clock)
        assert chores.names == ["retention"]
        chores.start()
        try:
            deadline = time.monotonic() + 15
            while store.exists(due.key) or len(runs) < 3:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        finally:
            await chores.stop()

    asyncio.run(run())
    assert not store.exists(due.key) and store.exists(young.key)
    assert list(_rows(db)) == [young.key]


def test_now_must_be_aware(db: Database, store: LocalObjectStore) -> None:
    with pytest.raises(ValueError, match="aware"):
        sweep(db, store, POLICY, now=datetime(2026, 1, 1))


# --- the command --------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MEGACITY_", "S3_"))}
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "megacity", "retention", "sweep", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **env},
    )


def test_the_command_sweeps_the_configured_store(tmp_path: Path, signer: object) -> None:
    data_dir = tmp_path / "var"
    database = Database(f"sqlite:///{data_dir / 'megacity.db'}")
    database.upgrade()
    local = LocalObjectStore(data_dir / "objects", signer)  # type: ignore[arg-type]
    old = local.put("kzone/audio/u1/old.wav", b"12345", "audio/wav")
    with database.session() as session:
        record_object(session, old, Kind.AUDIO, now=datetime.now(UTC) - 31 * DAY)
    database.close()
    env = {"MEGACITY_DATA_DIR": str(data_dir)}

    dry = _cli("--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "(dry run): would delete 1 objects, 5 bytes" in dry.stdout
    assert "would delete kzone/audio/u1/old.wav" in dry.stdout
    assert local.exists(old.key)

    real = _cli(env={**env, "MEGACITY_RETENTION": '{"audio": {"retention_days": 60}}'})
    assert real.returncode == 0 and "deleted 0 objects" in real.stdout  # 60 days: not due
    real = _cli("--orphans", env=env)
    assert real.returncode == 0, real.stderr
    assert "deleted 1 objects, 5 bytes" in real.stdout and "audio: 1 objects" in real.stdout
    assert not local.exists(old.key)

    broken = _cli(env={**env, "MEGACITY_RETENTION": "{not json"})
    assert broken.returncode == 1 and '"retention"' in broken.stderr
    assert "Traceback" not in broken.stderr

"""Migrations: applied from nothing, a no-op the second time, in step with the models."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Index, MetaData, String, inspect, text

from megacity.db import Base, Database, DatabaseError
from megacity.db.database import UPGRADE_LOCK


def test_upgrade_from_nothing_then_again_is_a_no_op(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert db.revision() is None
        first = db.upgrade()
        assert (first.before, first.after, first.changed) == (None, "0006_scale", True)
        assert db.revision() == Database.head() == "0006_scale"
        second = db.upgrade()
        assert (second.before, second.after, second.changed) == ("0006_scale",) * 2 + (False,)
        tables = set(inspect(db.engine).get_table_names())
        assert {
            "stored_objects",
            "dance_references",
            "jobs",
            "feedback",
            "alembic_version",
        } <= tables
    finally:
        db.close()


def test_models_and_migrations_agree(db: Database) -> None:
    """What `alembic check` does: autogenerate finds nothing to change."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == []


def test_sqlite_runs_with_wal_and_foreign_keys(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        db.close()


def test_a_migration_failing_half_way_leaves_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole upgrade is one transaction on both backends (DDL included)."""
    from alembic.operations import Operations

    real = Operations.create_index
    calls = 0

    def failing_create_index(self: Operations, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk on fire")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Operations, "create_index", failing_create_index)
    db = Database(db_url)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            db.upgrade()
        assert inspect(db.engine).get_table_names() == []
        assert db.revision() is None
        monkeypatch.setattr(Operations, "create_index", real)
        assert db.upgrade().after == "0006_scale"
    finally:
        db.close()


def test_replicas_upgrading_together_apply_the_migration_once(db_url: str) -> None:
    replicas = [Database(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(replicas))
    results: list[tuple[str | None, str | None]] = []
    failures: list[BaseException] = []

    def start(db: Database) -> None:
        barrier.wait()
        try:
            up = db.upgrade()
            results.append((up.before, up.after))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(db,)) for db in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for db in replicas:
        db.close()
    assert failures == []
    assert sorted(results, key=repr) == [("0006_scale",) * 2] * 3 + [(None, "0006_scale")]


def test_a_held_migration_lock_times_out_with_a_clear_error(pg_url: str) -> None:
    db = Database(pg_url)
    holder = Database(pg_url)
    try:
        with holder.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": UPGRADE_LOCK})
            with pytest.raises(DatabaseError, match="migration lock"):
                db.upgrade(lock_timeout_s=0.3)
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": UPGRADE_LOCK})
            conn.commit()
        assert db.upgrade().after == "0006_scale"
        with db.engine.connect() as conn:  # the lock was released after the upgrade
            held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
            assert held.scalar() == 0
    finally:
        db.close()
        holder.close()


def test_the_agreement_check_sees_drift(db: Database) -> None:
    """The check above is not vacuous: a changed type and a new index are reported."""
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    references = drifted.tables["dance_references"]
    references.c.title.type = String(100)
    Index("ix_extra", references.c.title)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        kinds = sorted(
            d[0][0] if isinstance(d, list) else d[0] for d in compare_metadata(context, drifted)
        )
    assert kinds == ["add_index", "modify_type"]

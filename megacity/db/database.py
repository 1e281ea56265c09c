"""Database(url): the engine, transactional sessions, and migrations applied in-process.

SQLite (the embedded default) runs in WAL mode with foreign keys on, and with real
transactions for DDL too: pysqlite's own transaction handling is turned off and every
transaction starts with BEGIN IMMEDIATE, so concurrent writers queue on the busy
timeout instead of failing when a read turns into a write ("database is locked"). PostgreSQL goes through psycopg 3; a plain postgresql:// or
postgres:// URL (as DATABASE_URL usually is) is mapped to it.

With a `read_url` (DATABASE_READ_URL: a streaming replica), `read_session()` serves the
reads that tolerate the replica's lag (replica.py decides which). While the replica is
unreachable, or lags more than `max_lag_s`, those reads go to the primary — logged once
when it happens and once when the replica is back.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("megacity.db")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_lock key taken around migrations: b"megacity" as a signed 64-bit integer.
UPGRADE_LOCK = int.from_bytes(b"megacity", "big", signed=True)
_SQLITE_BUSY_S = 30.0  # how long SQLite waits for another process's write transaction


class DatabaseError(RuntimeError):
    """The database cannot be used as configured (bad URL, unreachable, locked)."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What `Database.upgrade()` did: the schema revision before and after."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def database_url(url: str | URL) -> URL:
    """A SQLAlchemy URL for SQLite or PostgreSQL (psycopg 3); ValueError for anything else."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("the database URL cannot be parsed") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    return parsed


class Database:
    """One engine and its session factory; `session()` commits, or rolls back on error."""

    def __init__(
        self,
        url: str | URL,
        *,
        echo: bool = False,
        read_url: str | URL | None = None,
        max_lag_s: float = 30.0,
    ) -> None:
        self.url = database_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url, echo)
        else:
            self.engine = create_engine(
                self.url, echo=echo, pool_pre_ping=True, connect_args={"connect_timeout": 10}
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.replica = Replica(read_url, max_lag_s, echo) if read_url else None

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    @property
    def display_url(self) -> str:
        """The URL with its password hidden, for logs and messages."""
        return self.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reads that tolerate the replica's lag: on the replica when there is
        one and it is usable, else on the primary."""
        conn = self.replica.connect() if self.replica is not None else None
        if conn is None:
            with self.session() as session:
                yield session
            return
        try:
            with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                yield session
        finally:
            conn.close()

    def revision(self) -> str | None:
        """The schema revision the database is at (None before the first upgrade)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head() -> str | None:
        """The newest revision this code ships."""
        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    def upgrade(self, revision: str = "head", *, lock_timeout_s: float = 60.0) -> Upgrade:
        """Apply the migrations up to `revision`, one process at a time; a no-op when there."""
        config = _alembic_config()
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                _pg_lock(conn, lock_timeout_s)
            # On SQLite, BEGIN IMMEDIATE makes a second process wait for the first's upgrade.
            try:
                with conn.begin():
                    before = MigrationContext.configure(conn).get_current_revision()
                    config.attributes["connection"] = conn
                    command.upgrade(config, revision)
                    after = MigrationContext.configure(conn).get_current_revision()
            finally:
                if self.dialect == "postgresql":
                    _pg_unlock(conn)
        result = Upgrade(before, after)
        if result.changed:
            log.info(
                "database upgraded",
                extra={"database": self.display_url, "from": before, "to": after},
            )
        return result

    def close(self) -> None:
        """Close the pooled connections (at shutdown)."""
        self.engine.dispose()
        if self.replica is not None:
            self.replica.engine.dispose()


# The replica's delay (s): 0 when it has replayed all it received, else the age of the
# last transaction it replayed; NULL on a primary or before any replay (taken as no lag).
_LAG_SQL = text(
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
)


class Replica:
    """A read replica's engine, and whether it may be used now (reachable, not too late).

    An unreachable replica is left alone for `retry_s`; its lag is measured at most every
    `check_s` on the connection a read is about to use.
    """

    retry_s = 5.0
    check_s = 2.0

    def __init__(self, url: str | URL, max_lag_s: float, echo: bool = False) -> None:
        self.url = database_url(url)
        if self.url.get_backend_name() != "postgresql":
            raise ValueError("DATABASE_READ_URL must be a PostgreSQL replica")
        self.engine = create_engine(
            self.url, echo=echo, pool_pre_ping=True, connect_args={"connect_timeout": 2}
        )
        self.max_lag_s = max_lag_s
        self.state = "unknown"  # usable, down, lagging
        self._retry_at = 0.0
        self._checked_at = 0.0

    def connect(self) -> Connection | None:
        """A connection to read from, or None: read from the primary (and why is logged)."""
        now = time.monotonic()
        if self.state != "usable" and now < self._retry_at:
            return None
        try:
            conn = self.engine.connect()
            if now - self._checked_at >= self.check_s or self.state != "usable":
                lag = conn.execute(_LAG_SQL).scalar()
                conn.rollback()
                self._checked_at = now
                if lag is not None and float(lag) > self.max_lag_s:
                    conn.close()
                    self._mark("lagging", f"{float(lag):.1f} s behind", now)
                    return None
        except SQLAlchemyError as exc:
            self._mark("down", str(exc).splitlines()[0][:200], now)
            return None
        if self.state != "usable":
            log.info("read replica in use", extra={"replica": self._name(), "was": self.state})
            self.state = "usable"
        return conn

    def _mark(self, state: str, why: str, now: float) -> None:
        self._retry_at = now + self.retry_s
        if state != self.state:
            log.warning(
                "read replica not used: reads go to the primary",
                extra={"replica": self._name(), "state": state, "reason": why},
            )
        self.state = state

    def _name(self) -> str:
        return self.url.render_as_string(hide_password=True)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    path = url.database
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = create_engine(url, echo=echo, connect_args={"timeout": _SQLITE_BUSY_S})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN (below) owns transactions
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        _wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _wal(cursor: Any) -> None:
    """Switch a new database file to WAL (persistent, so once per file).

    The switch needs a moment of exclusive access and SQLite answers "database is
    locked" at once, without its busy timeout, when another process is using the new
    file, so retry for a while.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_S
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _pg_lock(conn: Connection, timeout_s: float) -> None:
    """The session-level advisory lock that serialises upgrades across router replicas."""
    deadline = time.monotonic() + timeout_s
    while True:
        locked = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": UPGRADE_LOCK})
        got = bool(locked.scalar())
        conn.commit()
        if got:
            return
        if time.monotonic() >= deadline:
            raise DatabaseError(
                f"another process has held the migration lock for over {timeout_s:g} s"
            )
        time.sleep(0.1)


def _pg_unlock(conn: Connection) -> None:
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": UPGRADE_LOCK})
        conn.commit()
    except Exception:
        # A broken connection: closing the PostgreSQL session releases the lock.
        conn.invalidate()

"""Databases for the tests: a SQLite file in tmp_path, and a throwaway PostgreSQL database.

PostgreSQL is the real server at 127.0.0.1:5432 (or MEGACITY_TEST_POSTGRES_URL, a URL
of a role that may create databases). A test session migrates one database of its own
(emptied after each test), and migration tests get a fresh one each; every database has
a unique name and is dropped afterwards, so parallel runs never meet. An unreachable
server fails the tests under CI=true and skips them otherwise, saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from megacity.db import Base, Database
from megacity.replicas import throwaway_database
from megacity.testing import unavailable

ADMIN_URLS = (
    [os.environ["MEGACITY_TEST_POSTGRES_URL"]]
    if os.environ.get("MEGACITY_TEST_POSTGRES_URL")
    else [
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql://root@127.0.0.1:5432/test",
    ]
)


def _admin_url() -> str:
    """The first admin URL that connects and may create databases."""
    errors = []
    for url in ADMIN_URLS:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                row = conn.execute(
                    "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
                ).fetchone()
                if row and row[0]:
                    return url
                errors.append(f"{url}: the role may not create databases")
        except psycopg.Error as exc:
            errors.append(f"{url}: {str(exc).strip().splitlines()[0]}")
    unavailable("PostgreSQL is not usable for the tests: " + "; ".join(errors))


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    return _admin_url()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with throwaway_database(pg_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def pg_migrated(pg_admin_url: str) -> Iterator[Database]:
    """The session's PostgreSQL database, migrated once."""
    with throwaway_database(pg_admin_url) as url:
        database = Database(url)
        database.upgrade()
        try:
            yield database
        finally:
            database.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'megacity.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: a new SQLite file, or the session's PostgreSQL one."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'megacity.db'}")
        database.upgrade()
        yield database
        database.close()
        return
    database = request.getfixturevalue("pg_migrated")
    try:
        yield database
    finally:
        with database.session() as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built here see only what the test sets."""
    for name in list(os.environ):
        if name.startswith("MEGACITY_") and name != "MEGACITY_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.delenv("DATABASE_URL", raising=False)

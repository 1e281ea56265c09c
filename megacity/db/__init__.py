"""Relational state: SQLAlchemy models, the Database (engine, sessions, migrations)."""

from __future__ import annotations

import os
from pathlib import Path

from megacity.config.settings import Settings
from megacity.db.database import Database, DatabaseError, Upgrade, database_url
from megacity.db.models import Base, DanceReference, StoredObject

SQLITE_FILE = "megacity.db"


def default_database_url(settings: Settings) -> str:
    """DATABASE_URL, or the SQLite file data_dir/megacity.db (absolute)."""
    if settings.database_url:
        return settings.database_url
    path = Path(os.path.abspath(Path(settings.data_dir) / SQLITE_FILE))
    return f"sqlite:///{path}"


def build_database(settings: Settings) -> Database:
    """The database the settings name (creating the SQLite file's folder when needed), with
    its read replica when DATABASE_READ_URL names one."""
    return Database(
        default_database_url(settings),
        read_url=settings.database_read_url,
        max_lag_s=settings.db_replica_max_lag_s,
    )


__all__ = [
    "Base",
    "DanceReference",
    "Database",
    "DatabaseError",
    "StoredObject",
    "Upgrade",
    "build_database",
    "database_url",
    "default_database_url",
]

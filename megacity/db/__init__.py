"""Relational state: SQLAlchemy models, the Database (engine, sessions, migrations).

SQLAlchemy and Alembic load when one of these names is first used, not with the package:
a router that never touches the database never imports them.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megacity.config.settings import Settings

if TYPE_CHECKING:
    from megacity.db.database import Database, DatabaseError, Upgrade, database_url
    from megacity.db.models import Base, DanceReference, StoredObject, VoiceReference

SQLITE_FILE = "megacity.db"
_LAZY = {
    "Database": "megacity.db.database",
    "DatabaseError": "megacity.db.database",
    "Upgrade": "megacity.db.database",
    "database_url": "megacity.db.database",
    "Base": "megacity.db.models",
    "DanceReference": "megacity.db.models",
    "StoredObject": "megacity.db.models",
    "VoiceReference": "megacity.db.models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def default_database_url(settings: Settings) -> str:
    """DATABASE_URL, or the SQLite file data_dir/megacity.db (absolute)."""
    if settings.database_url:
        return settings.database_url
    path = Path(os.path.abspath(Path(settings.data_dir) / SQLITE_FILE))
    return f"sqlite:///{path}"


def build_database(settings: Settings) -> Database:
    """The database the settings name (creating the SQLite file's folder when needed), with
    its read replica when DATABASE_READ_URL names one."""
    from megacity.db.database import Database

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
    "VoiceReference",
    "build_database",
    "database_url",
    "default_database_url",
]

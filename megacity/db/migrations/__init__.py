"""Alembic migrations, applied in-process by `Database.upgrade()` (no alembic.ini)."""

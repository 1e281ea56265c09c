"""Model activations: which version of a model is active, kept where every replica reads it.

One row per model that an operator switched at run time; the topology file's
``active: true`` holds for the others. Written in one statement (an upsert), so two
replicas activating at the same moment leave one row, the last writer's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from megacity.db.models import ModelActivation, utcnow


def activate(
    session: Session,
    model: str,
    version: str,
    *,
    by: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record `version` as the active version of `model` (replacing any earlier row)."""
    row = {"model": model, "version": version, "activated_at": now or utcnow(), "activated_by": by}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ModelActivation).values(**row)
    changed = {k: stmt.excluded[k] for k in ("version", "activated_at", "activated_by")}
    session.execute(stmt.on_conflict_do_update(index_elements=["model"], set_=changed))


def activations(session: Session) -> dict[str, str]:
    """Every run-time activation: model → version."""
    rows = session.execute(select(ModelActivation.model, ModelActivation.version))
    return {model: version for model, version in rows}

"""Stored objects: the rows that mirror the object store, for retention and ownership."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from megacity.db.models import StoredObject, utcnow
from megacity.storage.base import ObjectInfo
from megacity.storage.keys import Kind


def record_object(
    session: Session,
    info: ObjectInfo,
    kind: Kind,
    *,
    owner_id: str | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> StoredObject:
    """Add (or, for a key stored again, update) the row of an object just put in the store."""
    row = session.get(StoredObject, info.key)
    if row is None:
        row = StoredObject(key=info.key, created_at=now or utcnow())
        session.add(row)
    row.kind = kind.value
    row.content_type = info.content_type
    row.size = info.size
    row.sha256 = info.sha256
    row.owner_id = owner_id
    row.expires_at = expires_at
    session.flush()
    return row


def get_object(session: Session, key: str) -> StoredObject | None:
    """The row of `key`, if the object is recorded."""
    return session.get(StoredObject, key)

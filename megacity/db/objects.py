"""Stored objects: the rows that mirror the object store, for retention and ownership."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from megacity.db.models import DanceReference, StoredObject, VoiceReference, utcnow
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


def expired_objects(
    session: Session,
    *,
    now: datetime,
    cutoffs: Mapping[str, datetime],
    after: str = "",
    limit: int = 500,
) -> list[StoredObject]:
    """Rows due at `now`, by key after `after`: expires_at <= now, or, without expires_at,
    of a kind in `cutoffs` created at or before that kind's cutoff."""
    due = [StoredObject.expires_at <= now]
    for kind, cutoff in cutoffs.items():
        due.append(
            and_(
                StoredObject.expires_at.is_(None),
                StoredObject.kind == kind,
                StoredObject.created_at <= cutoff,
            )
        )
    query = select(StoredObject).where(or_(*due), StoredObject.key > after)
    return list(session.scalars(query.order_by(StoredObject.key).limit(limit)))


def referenced_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Those of `keys` a reference points at (a dance's keypoints or video, a voice's contour)."""
    if not keys:
        return set()
    points = select(DanceReference.keypoints_key).where(DanceReference.keypoints_key.in_(keys))
    videos = select(DanceReference.video_key).where(DanceReference.video_key.in_(keys))
    contours = select(VoiceReference.features_key).where(VoiceReference.features_key.in_(keys))
    found = session.scalars(points.union(videos, contours))
    return {key for key in found if key is not None}


def recorded_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that have a row."""
    if not keys:
        return set()
    return set(session.scalars(select(StoredObject.key).where(StoredObject.key.in_(keys))))

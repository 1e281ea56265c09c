"""Dance references: create, read, list (newest first) and delete with their objects.

Order of work, so that a failure never leaves a row pointing at nothing: put the
objects in the store, then `create_reference` (one transaction records the objects and
the reference); to delete, `delete_reference` removes both rows and returns the keys,
and the caller deletes those from the store after the commit. A crash in between
leaves only unreferenced files, which a store sweep can find.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from megacity.db.models import DanceReference, StoredObject, VoiceReference, utcnow
from megacity.db.objects import record_object
from megacity.db.paging import MAX_PAGE
from megacity.errors import NotFound
from megacity.storage.base import ObjectInfo
from megacity.storage.keys import Kind

R = TypeVar("R", DanceReference, VoiceReference)


def new_reference_id() -> str:
    """A fresh reference id (uuid4 hex); build the object keys from it before storing."""
    return uuid.uuid4().hex


def create_reference(
    session: Session,
    reference_id: str,
    *,
    title: str,
    fps: float,
    frames: int,
    duration_s: float,
    width: int,
    height: int,
    keypoints: ObjectInfo,
    video: ObjectInfo | None = None,
    bpm: float | None = None,
    owner_id: str | None = None,
    now: datetime | None = None,
) -> DanceReference:
    """Record a reference whose keypoints (and video) are already in the store.

    `fps`, `frames`, `duration_s` (seconds), `width` and `height` (pixels) describe the
    pose sequence as extracted; the objects are recorded as keypoints and video.
    """
    created = now or utcnow()
    record_object(session, keypoints, Kind.KEYPOINTS, owner_id=owner_id, now=created)
    if video is not None:
        record_object(session, video, Kind.VIDEO, owner_id=owner_id, now=created)
    reference = DanceReference(
        id=reference_id,
        title=title,
        bpm=bpm,
        owner_id=owner_id,
        fps=fps,
        frames=frames,
        duration_s=duration_s,
        width=width,
        height=height,
        keypoints_key=keypoints.key,
        video_key=video.key if video is not None else None,
        created_at=created,
    )
    session.add(reference)
    session.flush()
    return reference


def get_reference(session: Session, reference_id: str) -> DanceReference:
    """The reference; NotFound (404) when there is none."""
    reference = session.get(DanceReference, reference_id)
    if reference is None:
        raise _missing(reference_id)
    return reference


def list_references(
    session: Session, *, limit: int = 50, offset: int = 0, owner_id: str | None = None
) -> list[DanceReference]:
    """References newest first (one owner's when given), `limit` (at most 500) from `offset`."""
    return newest_first(session, DanceReference, limit=limit, offset=offset, owner_id=owner_id)


def newest_first(
    session: Session, model: type[R], *, limit: int, offset: int, owner_id: str | None
) -> list[R]:
    """Rows of a reference table newest first (one owner's when given), a page of them."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValueError(f"limit must be 1..{MAX_PAGE} and offset not negative")
    query = select(model)
    if owner_id is not None:
        query = query.where(model.owner_id == owner_id)
    query = query.order_by(model.created_at.desc(), model.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))


def delete_reference(session: Session, reference_id: str) -> list[str]:
    """Remove the reference and its object rows; the keys to delete from the store."""
    reference = session.get(DanceReference, reference_id)
    if reference is None:
        raise _missing(reference_id)
    keys = [k for k in (reference.keypoints_key, reference.video_key) if k is not None]
    return delete_with_objects(session, reference, keys)


def delete_with_objects(session: Session, reference: R, keys: list[str]) -> list[str]:
    """Delete a reference row, then its objects' rows; the keys, for the store."""
    session.delete(reference)
    session.flush()  # the reference goes first: its foreign keys protect the objects
    for key in keys:
        row = session.get(StoredObject, key)
        if row is not None:
            session.delete(row)
    session.flush()
    return keys


def _missing(reference_id: str) -> NotFound:
    return NotFound(
        f"no dance reference {reference_id!r}", code="reference_not_found", param="reference_id"
    )

"""Voice references: create, read, list (newest first) and delete with their contour.

The same order of work as dance references (``references``): the contour goes into the
store first, then one transaction records the object and the reference; a delete removes
both rows and returns the key, which the caller deletes from the store after the commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from megacity.db.models import VoiceReference, utcnow
from megacity.db.objects import record_object
from megacity.db.references import delete_with_objects, newest_first
from megacity.errors import NotFound
from megacity.storage.base import ObjectInfo
from megacity.storage.keys import Kind


def create_voice_reference(
    session: Session,
    reference_id: str,
    *,
    title: str,
    language: str,
    mode: str,
    text: str,
    duration_s: float,
    voiced_s: float,
    median_f0_hz: float,
    words: int,
    features: ObjectInfo,
    owner_id: str | None = None,
    now: datetime | None = None,
) -> VoiceReference:
    """Record a voice reference whose contour (``features``) is already in the store."""
    created = now or utcnow()
    record_object(session, features, Kind.CONTOUR, owner_id=owner_id, now=created)
    reference = VoiceReference(
        id=reference_id,
        title=title,
        language=language,
        mode=mode,
        text=text,
        owner_id=owner_id,
        duration_s=duration_s,
        voiced_s=voiced_s,
        median_f0_hz=median_f0_hz,
        words=words,
        features_key=features.key,
        created_at=created,
    )
    session.add(reference)
    session.flush()
    return reference


def get_voice_reference(session: Session, reference_id: str) -> VoiceReference:
    """The voice reference; NotFound (404) when there is none."""
    reference = session.get(VoiceReference, reference_id)
    if reference is None:
        raise _missing(reference_id)
    return reference


def list_voice_references(
    session: Session, *, limit: int = 50, offset: int = 0, owner_id: str | None = None
) -> list[VoiceReference]:
    """Voice references newest first (one owner's when given), ``limit`` from ``offset``."""
    return newest_first(session, VoiceReference, limit=limit, offset=offset, owner_id=owner_id)


def delete_voice_reference(session: Session, reference_id: str) -> list[str]:
    """Remove the reference and its contour's row; the keys to delete from the store."""
    reference = get_voice_reference(session, reference_id)
    return delete_with_objects(session, reference, [reference.features_key])


def _missing(reference_id: str) -> NotFound:
    return NotFound(
        f"no voice reference {reference_id!r}", code="reference_not_found", param="reference_id"
    )

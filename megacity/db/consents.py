"""Consent records for voice/face synthesis: create, read, list, revoke, and require.

A record belongs to the user or service that recorded it (its owner); anyone else who
asks for it by id is told it does not exist, so ids do not leak. The subject (the
person whose voice or face it is) may also revoke it and use it. Revoking takes effect
at once: `require_consent` reads the row in the request that needs it, never a cache.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from megacity.db.models import Consent, utcnow
from megacity.db.paging import MAX_PAGE
from megacity.errors import Forbidden, NotFound

SCOPES = ("voice_clone", "voice_synthesis", "face_synthesis")
_CONSENT_ID = re.compile(r"^[0-9a-f]{32}$")


def scopes_of(consent: Consent) -> list[str]:
    """The record's scopes as a list, in SCOPES order."""
    return consent.scopes.split()


def consent_status(consent: Consent, now: datetime | None = None) -> str:
    """ "revoked", "expired" or "active" at `now` (default: the current time)."""
    if consent.revoked_at is not None:
        return "revoked"
    if consent.expires_at is not None and consent.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def create_consent(
    session: Session,
    *,
    subject_id: str,
    granted_by: str,
    owner_id: str,
    scopes: Iterable[str],
    evidence: str | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> Consent:
    """Record a consent; ValueError for an empty or unknown scope, or a past expiry."""
    created = now or utcnow()
    if expires_at is not None and expires_at <= created:
        raise ValueError("expires_at must be in the future")
    consent = Consent(
        id=uuid.uuid4().hex,
        subject_id=subject_id,
        granted_by=granted_by,
        owner_id=owner_id,
        scopes=" ".join(_canonical_scopes(scopes)),
        evidence=evidence,
        created_at=created,
        expires_at=expires_at,
    )
    session.add(consent)
    session.flush()
    return consent


def get_consent(session: Session, consent_id: str, owner_id: str) -> Consent:
    """The owner's record; NotFound (404) when missing or another owner's."""
    consent = _find(session, consent_id)
    if consent is None or consent.owner_id != owner_id:
        raise _missing()
    return consent


def list_consents(
    session: Session,
    owner_id: str,
    subject_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Consent]:
    """The owner's records newest first (one subject's when given), `limit` (<= 500)."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValueError(f"limit must be 1..{MAX_PAGE} and offset not negative")
    query = select(Consent).where(Consent.owner_id == owner_id)
    if subject_id is not None:
        query = query.where(Consent.subject_id == subject_id)
    query = query.order_by(Consent.created_at.desc(), Consent.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))


def revoke_consent(
    session: Session, consent_id: str, by: str, now: datetime | None = None
) -> Consent:
    """Revoke, by the owner or the subject; revoking again keeps the first revoked_at."""
    consent = _find(session, consent_id)
    if consent is None or by not in (consent.owner_id, consent.subject_id):
        raise _missing()
    # One conditional UPDATE: of two concurrent revocations, only the first writes.
    session.execute(
        update(Consent)
        .where(Consent.id == consent.id, Consent.revoked_at.is_(None))
        .values(revoked_at=now or utcnow(), revoked_by=by)
        .execution_options(synchronize_session=False)
    )
    session.refresh(consent)
    return consent


def require_consent(
    session: Session,
    consent_id: str | None,
    *,
    subject_id: str,
    scope: str,
    requester: str | None,
    now: datetime | None = None,
) -> Consent:
    """The active consent that lets `requester` use `subject_id`'s voice/face for `scope`.

    Forbidden (403) otherwise, with a code saying why: consent_required, consent_invalid
    (unknown, or neither the requester's nor about them: one message for both),
    consent_revoked, consent_expired, consent_subject_mismatch, consent_scope_missing.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown consent scope {scope!r}")
    if not consent_id:
        raise Forbidden(
            f"a consent record is required for {scope}", code="consent_required", param="consent_id"
        )
    consent = _find(session, consent_id)
    if (
        consent is None
        or requester is None
        or requester not in (consent.owner_id, consent.subject_id)
    ):
        raise Forbidden(
            "no usable consent record with this id", code="consent_invalid", param="consent_id"
        )
    status = consent_status(consent, now)
    if status != "active":
        raise Forbidden(
            f"the consent record is {status}", code=f"consent_{status}", param="consent_id"
        )
    if consent.subject_id != subject_id:
        raise Forbidden(
            "the consent record is for another person",
            code="consent_subject_mismatch",
            param="consent_id",
        )
    if scope not in scopes_of(consent):
        raise Forbidden(
            f"the consent record does not cover {scope}",
            code="consent_scope_missing",
            param="consent_id",
        )
    return consent


def _canonical_scopes(scopes: Iterable[str]) -> list[str]:
    wanted = set(scopes)
    unknown = wanted - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown consent scopes {sorted(unknown)}: use {', '.join(SCOPES)}")
    if not wanted:
        raise ValueError("a consent needs at least one scope")
    return [s for s in SCOPES if s in wanted]


def _find(session: Session, consent_id: str) -> Consent | None:
    # Ids are uuid4 hex: anything else cannot exist, and never reaches the database.
    if not _CONSENT_ID.match(consent_id):
        return None
    return session.get(Consent, consent_id)


def _missing() -> NotFound:
    return NotFound("no such consent record", code="consent_not_found", param="consent_id")

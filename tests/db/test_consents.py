"""Consent records on SQLite and PostgreSQL: CRUD, owner isolation, revocation, require_consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from megacity.db import Database
from megacity.db.consents import (
    consent_status,
    create_consent,
    get_consent,
    list_consents,
    require_consent,
    revoke_consent,
    scopes_of,
)
from megacity.errors import Forbidden, NotFound

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def _create(db: Database, **overrides: object) -> str:
    fields: dict[str, object] = {
        "subject_id": "singer-1",
        "granted_by": "singer-1",
        "owner_id": "studio",
        "scopes": ["voice_synthesis", "voice_clone"],
        "evidence": "form-2025-017",
        "now": T0,
        **overrides,
    }
    with db.session() as session:
        consent = create_consent(session, **fields)  # type: ignore[arg-type]
        return consent.id


def test_create_read_and_list_newest_first(db: Database) -> None:
    first = _create(db)
    second = _create(db, subject_id="dancer-2", scopes=["face_synthesis"], now=T0 + timedelta(1))
    third = _create(db, now=T0 + timedelta(2), expires_at=T0 + timedelta(days=30))
    _create(db, owner_id="other-studio")
    with db.session() as session:
        one = get_consent(session, first, "studio")
        assert scopes_of(one) == ["voice_clone", "voice_synthesis"]  # canonical order
        assert (one.subject_id, one.granted_by, one.evidence) == (
            "singer-1",
            "singer-1",
            "form-2025-017",
        )
        assert one.created_at == T0 and one.revoked_at is None
        listed = [c.id for c in list_consents(session, "studio")]
        assert listed == [third, second, first]
        assert [c.id for c in list_consents(session, "studio", "singer-1")] == [third, first]
        assert [c.id for c in list_consents(session, "studio", limit=1, offset=1)] == [second]
        assert get_consent(session, third, "studio").expires_at == T0 + timedelta(days=30)


def test_another_owner_gets_not_found(db: Database) -> None:
    consent_id = _create(db)
    with db.session() as session:
        for owner, cid in [("intruder", consent_id), ("studio", "0" * 32), ("studio", "../x")]:
            with pytest.raises(NotFound) as info:
                get_consent(session, cid, owner)
            assert info.value.code == "consent_not_found"
        assert list_consents(session, "intruder") == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scopes": []}, "at least one scope"),
        ({"scopes": ["voice_clone", "mind_reading"]}, "unknown consent scopes"),
        ({"expires_at": T0}, "future"),
    ],
)
def test_bad_records_are_refused(db: Database, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _create(db, **overrides)


def test_revocation_by_owner_or_subject_is_idempotent(db: Database) -> None:
    by_subject = _create(db)
    by_owner = _create(db)
    with db.session() as session:
        revoked = revoke_consent(session, by_subject, "singer-1", now=T0 + timedelta(hours=1))
        assert revoked.revoked_at == T0 + timedelta(hours=1) and revoked.revoked_by == "singer-1"
    with db.session() as session:
        again = revoke_consent(session, by_subject, "studio", now=T0 + timedelta(hours=5))
        assert again.revoked_at == T0 + timedelta(hours=1) and again.revoked_by == "singer-1"
        assert revoke_consent(session, by_owner, "studio").revoked_by == "studio"
        with pytest.raises(NotFound):
            revoke_consent(session, by_owner, "intruder")
    with db.session() as session:
        assert consent_status(get_consent(session, by_subject, "studio")) == "revoked"


def _forbidden_code(db: Database, consent_id: str | None, **kwargs: object) -> str:
    args: dict[str, object] = {
        "subject_id": "singer-1",
        "scope": "voice_synthesis",
        "requester": "studio",
        "now": T0 + timedelta(days=1),
        **kwargs,
    }
    with db.session() as session, pytest.raises(Forbidden) as info:
        require_consent(session, consent_id, **args)  # type: ignore[arg-type]
    assert info.value.status == 403
    return info.value.code


def test_require_consent_says_why_it_refuses(db: Database) -> None:
    good = _create(db, expires_at=T0 + timedelta(days=10))
    revoked = _create(db)
    with db.session() as session:
        revoke_consent(session, revoked, "singer-1")
    assert _forbidden_code(db, None) == "consent_required"
    assert _forbidden_code(db, "") == "consent_required"
    assert _forbidden_code(db, "f" * 32) == "consent_invalid"
    assert _forbidden_code(db, "not-an-id") == "consent_invalid"
    assert _forbidden_code(db, good, requester="intruder") == "consent_invalid"
    assert _forbidden_code(db, good, requester=None) == "consent_invalid"
    assert _forbidden_code(db, revoked) == "consent_revoked"
    assert _forbidden_code(db, good, now=T0 + timedelta(days=10)) == "consent_expired"
    assert _forbidden_code(db, good, subject_id="singer-2") == "consent_subject_mismatch"
    assert _forbidden_code(db, good, scope="face_synthesis") == "consent_scope_missing"
    with db.session() as session:
        for requester in ("studio", "singer-1"):  # the owner, or the subject themself
            ok = require_consent(
                session,
                good,
                subject_id="singer-1",
                scope="voice_clone",
                requester=requester,
                now=T0 + timedelta(days=9),
            )
            assert ok.id == good
        with pytest.raises(ValueError, match="unknown consent scope"):
            require_consent(session, good, subject_id="singer-1", scope="x", requester="studio")


def test_revocation_takes_effect_for_the_next_request(db: Database) -> None:
    consent_id = _create(db)
    kwargs = {"subject_id": "singer-1", "scope": "voice_clone", "requester": "studio"}
    with db.session() as session:
        require_consent(session, consent_id, **kwargs)  # type: ignore[arg-type]
    with db.session() as session:
        revoke_consent(session, consent_id, "singer-1")
    assert _forbidden_code(db, consent_id, now=None, scope="voice_clone") == "consent_revoked"

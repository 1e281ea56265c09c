"""Service API keys on SQLite and PostgreSQL: digests at rest, revocation, expiry, the cache."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from megacity.auth import apikeys
from megacity.auth.apikeys import (
    ApiKeyVerifier,
    create_api_key,
    key_digest,
    list_api_keys,
    revoke_api_key,
)
from megacity.auth.principal import InvalidCredentials, Principal
from megacity.db import Database
from megacity.db.models import ApiKey, utcnow
from megacity.errors import ServiceUnavailable
from tests.db.conftest import (  # noqa: F401  (fixtures)
    _clean_env,
    db,
    pg_admin_url,
    pg_migrated,
)


@pytest.fixture
def database(db: Database) -> Database:  # noqa: F811  (SQLite, then PostgreSQL)
    return db


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verify(verifier: ApiKeyVerifier, key: str) -> Principal:
    return asyncio.run(verifier.verify(key))


def _refused(verifier: ApiKeyVerifier, key: str, reason: str) -> None:
    with pytest.raises(InvalidCredentials) as caught:
        _verify(verifier, key)
    assert reason in str(caught.value)
    assert caught.value.message == "invalid or expired credentials"


def _row(database: Database, key_id: str) -> ApiKey:
    with database.session() as session:
        row = session.get(ApiKey, key_id)
        assert row is not None
        return row


def test_a_key_is_stored_as_its_digest_only(database: Database) -> None:
    issued = create_api_key(database, "lms-backend", ["ai:use"], ["mpcstudy", "my-ktube"])
    assert issued.key.startswith(f"mk_{issued.id}_") and len(issued.id) == 12
    row = _row(database, issued.id)
    assert row.digest == key_digest(issued.key)
    secret = issued.key.removeprefix(f"mk_{issued.id}_")
    for column in ApiKey.__table__.columns:
        value = str(getattr(row, column.key))
        assert issued.key not in value and secret not in value
    assert (row.scopes, row.zones, row.name) == ("ai:use", "mpcstudy my-ktube", "lms-backend")


def test_a_key_verifies_to_a_service_principal(database: Database) -> None:
    issued = create_api_key(database, "lms-backend", ["ai:use", "ai:admin"], None)
    principal = _verify(ApiKeyVerifier(database), issued.key)
    assert principal == _verify(ApiKeyVerifier(database), issued.key)
    assert principal.subject == "service:lms-backend"
    assert principal.kind == "api_key"
    assert principal.zones is None
    assert principal.scopes == {"ai:use", "ai:admin"}
    assert principal.credential_id == issued.id


def test_wrong_secrets_and_malformed_keys_are_refused(database: Database) -> None:
    issued = create_api_key(database, "svc", ["ai:use"], None)
    verifier = ApiKeyVerifier(database)
    secret = issued.key.removeprefix(f"mk_{issued.id}_")
    other = ("B" if secret[0] != "B" else "C") + secret[1:]
    _refused(verifier, f"mk_{issued.id}_{other}", "wrong secret")
    _refused(verifier, f"mk_000000000000_{secret}", "unknown API key")
    for bad in ("", "mk_", "mk_zz_secret", issued.key + "x", issued.key.upper()):
        _refused(verifier, bad, "malformed")


def test_a_revoked_key_is_refused_once_its_cache_entry_ends(database: Database) -> None:
    clock = FakeClock()
    issued = create_api_key(database, "svc", ["ai:use"], None)
    verifier = ApiKeyVerifier(database, cache_s=30, clock=clock)
    _verify(verifier, issued.key)
    assert revoke_api_key(database, issued.id) is True
    assert revoke_api_key(database, issued.id) is True  # idempotent
    assert revoke_api_key(database, "000000000000") is False
    clock.now += 29
    _verify(verifier, issued.key)  # still cached: a revocation takes up to cache_s
    clock.now += 1
    _refused(verifier, issued.key, "revoked")
    _refused(ApiKeyVerifier(database), issued.key, "revoked")


def test_an_expired_key_is_refused_even_from_the_cache(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = create_api_key(database, "svc", ["ai:use"], None, ttl_s=3600)
    verifier = ApiKeyVerifier(database, cache_s=24 * 3600)
    _verify(verifier, issued.key)
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr(apikeys, "utcnow", lambda: later)
    _refused(verifier, issued.key, "expired")  # the cached entry knows its expiry
    _refused(ApiKeyVerifier(database), issued.key, "expired")


def test_refusals_are_cached_briefly(database: Database) -> None:
    clock = FakeClock()
    verifier = ApiKeyVerifier(database, clock=clock)
    issued = create_api_key(database, "svc", ["ai:use"], None)
    revoke_api_key(database, issued.id)
    _refused(verifier, issued.key, "revoked")
    with database.session() as session:  # un-revoke behind the cache's back
        row = session.get(ApiKey, issued.id)
        assert row is not None
        row.revoked_at = None
    clock.now += 4
    _refused(verifier, issued.key, "(cached)")  # no database round trip
    clock.now += 1
    _verify(verifier, issued.key)


def test_last_used_is_recorded_at_most_once_a_minute(database: Database) -> None:
    clock = FakeClock()
    issued = create_api_key(database, "svc", ["ai:use"], None)
    verifier = ApiKeyVerifier(database, cache_s=3600, clock=clock)
    assert _row(database, issued.id).last_used_at is None
    _verify(verifier, issued.key)
    first = _row(database, issued.id).last_used_at
    assert first is not None
    clock.now += 59
    _verify(verifier, issued.key)
    assert _row(database, issued.id).last_used_at == first
    clock.now += 1
    _verify(verifier, issued.key)
    later = _row(database, issued.id).last_used_at
    assert later is not None and later > first


def test_list_shows_keys_without_digests(database: Database) -> None:
    a = create_api_key(database, "svc-a", ["ai:use"], None)
    b = create_api_key(database, "svc-b", ["ai:admin"], ["mpcstudy"], ttl_s=60)
    revoke_api_key(database, a.id)
    listed = {k.id: k for k in list_api_keys(database)}
    assert set(listed) == {a.id, b.id}
    assert "digest" not in {f.name for f in fields(listed[a.id])}
    assert listed[a.id].revoked_at is not None and listed[a.id].zones is None
    assert listed[b.id].zones == {"mpcstudy"} and listed[b.id].expires_at is not None
    with database.session() as session:
        assert len(list(session.scalars(select(ApiKey)))) == 2


@pytest.mark.parametrize(
    ("name", "scopes", "zones", "message"),
    [
        ("bad name", ["ai:use"], None, "name"),
        ("x" * 121, ["ai:use"], None, "name"),
        ("svc", ["ai:everything"], None, "unknown scope"),
        ("svc", ["ai:use"], ["no spaces"], "zone"),
    ],
)
def test_create_validates_its_input(
    database: Database, name: str, scopes: list[str], zones: list[str] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_api_key(database, name, scopes, zones)


def test_an_unreachable_database_is_a_503_not_a_pass(tmp_path: Path) -> None:
    unmigrated = Database(f"sqlite:///{tmp_path / 'empty.db'}")  # no api_keys table
    with pytest.raises(ServiceUnavailable) as caught:
        _verify(ApiKeyVerifier(unmigrated), "mk_000000000000_" + "A" * 43)
    assert caught.value.status == 503 and caught.value.code == "auth_unavailable"
    unmigrated.close()

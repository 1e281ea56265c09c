"""Service API keys (`mk_<id>_<secret>`) for backend-to-backend calls, hashed at rest.

Only the SHA-256 digest of a key is stored, so a database leak yields no usable key
(the secret has 256 random bits: a fast hash is enough, no password KDF needed). A
verified key is cached for `cache_s` seconds: a revocation takes effect on every router
within that time. A refused key is cached for 5 s so that retrying one bad key does not
reach the database each time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from megacity.auth.principal import (
    SAFE_NAME,
    InvalidCredentials,
    Principal,
    parse_group,
    parse_scopes,
    parse_zones,
)
from megacity.errors import ServiceUnavailable

if TYPE_CHECKING:  # SQLAlchemy is imported when a key is first checked, not at start-up
    from megacity.db import Database
    from megacity.db.models import ApiKey


def utcnow() -> datetime:
    return datetime.now(UTC)


def _db_errors() -> tuple[type[Exception], ...]:
    """The database's exception types (evaluated only when an exception is being matched)."""
    from sqlalchemy.exc import SQLAlchemyError

    return (SQLAlchemyError,)


log = logging.getLogger("megacity.auth")
T = TypeVar("T")

API_KEY_PREFIX = "mk_"
SERVICE_PREFIX = "service:"  # a key's Principal subject is service:<name>
MAX_NAME = 128 - len(SERVICE_PREFIX)
_KEY_TEXT = re.compile(r"^mk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
NEGATIVE_CACHE_S = 5.0
TOUCH_INTERVAL_S = 60.0  # last_used_at is written at most this often per key
CACHE_ENTRIES = 10_000  # per cache (verified, refused); the oldest entries go first


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: `key` is the only copy of the secret, show it once and forget it."""

    id: str
    key: str
    name: str
    scopes: frozenset[str]
    zones: frozenset[str] | None
    expires_at: datetime | None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What may be shown about a key (never its digest)."""

    id: str
    name: str
    scopes: frozenset[str]
    zones: frozenset[str] | None
    group: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def key_digest(key: str) -> str:
    """Hex SHA-256 of the whole key text, as stored in ApiKey.digest."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    db: Database,
    name: str,
    scopes: Collection[str],
    zones: Collection[str] | None,
    ttl_s: float | None = None,
    group: str | None = None,
) -> IssuedKey:
    """Create and store (its digest only) a key for service `name`; ValueError on bad input.

    `group`: the user group the key's requests count under on the dashboard.
    """
    if not SAFE_NAME.match(name) or len(name) > MAX_NAME:
        raise ValueError(f"name must be 1..{MAX_NAME} of A-Z a-z 0-9 . _ : @ / -")
    if ttl_s is not None and not ttl_s > 0:
        raise ValueError("ttl must be positive")
    wanted_scopes = parse_scopes(scopes)
    wanted_zones = parse_zones(zones)
    wanted_group = parse_group(group)
    key_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    key = f"{API_KEY_PREFIX}{key_id}_{secret}"
    from megacity.db.models import ApiKey

    created = utcnow()
    expires = created + timedelta(seconds=ttl_s) if ttl_s is not None else None
    with db.session() as session:
        session.add(
            ApiKey(
                id=key_id,
                name=name,
                digest=key_digest(key),
                scopes=" ".join(sorted(wanted_scopes)),
                zones="" if wanted_zones is None else " ".join(sorted(wanted_zones)),
                group_name=wanted_group,
                created_at=created,
                expires_at=expires,
            )
        )
    return IssuedKey(key_id, key, name, wanted_scopes, wanted_zones, expires, wanted_group)


def revoke_api_key(db: Database, key_id: str) -> bool:
    """Mark the key revoked (idempotent); False when there is no such key."""
    with db.session() as session:
        row = session.get(_api_key(), key_id)
        if row is None:
            return False
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return True


def list_api_keys(db: Database) -> list[ApiKeyInfo]:
    """Every key, oldest first, without digests."""
    with db.session() as session:
        from sqlalchemy import select

        from megacity.db.models import ApiKey

        rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
        return [_info(row) for row in rows]


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        zones=frozenset(row.zones.split()) or None,
        group=row.group_name,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    expires_at: datetime | None
    until: float  # clock time when the entry must be checked again


class ApiKeyVerifier:
    """Verifies `mk_` keys against the database, with a small bounded cache."""

    def __init__(
        self,
        db: Database | Callable[[], Database],
        *,
        cache_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db  # or a callable that opens it on first use
        self.cache_s = cache_s
        self._clock = clock
        # Keyed by the digest of the presented key, never by id: another secret with a
        # known id must not hit a cached success.
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._refused: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._touched: OrderedDict[str, float] = OrderedDict()

    @property
    def db(self) -> Database:
        return self._db() if callable(self._db) else self._db

    async def verify(self, key: str) -> Principal:
        """The key's Principal; InvalidCredentials (str says why) when it is not valid now.

        ServiceUnavailable (503) when the database cannot be reached.
        """
        match = _KEY_TEXT.match(key)
        if match is None:
            raise InvalidCredentials("malformed API key")
        key_id, digest, now = match.group(1), key_digest(key), self._clock()
        cached = self._cached(digest, now)
        if cached is None:
            try:
                cached = await asyncio.to_thread(self._lookup, key_id, digest, now)
            except InvalidCredentials as exc:
                _put(self._refused, digest, (now + NEGATIVE_CACHE_S, exc.reason))
                raise
            except _db_errors() as exc:
                log.warning("API key not checked", extra={"key_id": key_id, "reason": str(exc)})
                raise ServiceUnavailable(
                    "credentials cannot be checked now", code="auth_unavailable"
                ) from None
            _put(self._verified, digest, cached)
        await self._touch(key_id, now)
        return cached.principal

    def _cached(self, digest: str, now: float) -> _Verified | None:
        refused = self._refused.get(digest)
        if refused is not None:
            if now < refused[0]:
                raise InvalidCredentials(f"{refused[1]} (cached)")
            del self._refused[digest]
        entry = self._verified.get(digest)
        if entry is None:
            return None
        if now >= entry.until:
            del self._verified[digest]
            return None
        if entry.expires_at is not None and entry.expires_at <= utcnow():
            del self._verified[digest]
            raise InvalidCredentials(f"API key {entry.principal.credential_id} expired")
        return entry

    def _lookup(self, key_id: str, digest: str, now: float) -> _Verified:
        """The key's row checked (in a worker thread); InvalidCredentials if unusable."""
        with self.db.session() as session:
            row = session.get(_api_key(), key_id)
            if row is None:
                raise InvalidCredentials(f"unknown API key {key_id}")
            if not hmac.compare_digest(row.digest, digest):
                raise InvalidCredentials(f"wrong secret for API key {key_id}")
            info = _info(row)
        if info.revoked_at is not None:
            raise InvalidCredentials(f"API key {key_id} revoked")
        if info.expires_at is not None and info.expires_at <= utcnow():
            raise InvalidCredentials(f"API key {key_id} expired")
        principal = Principal(
            subject=f"{SERVICE_PREFIX}{info.name}",
            scopes=info.scopes,
            zones=info.zones,
            kind="api_key",
            credential_id=key_id,
            group=info.group,
        )
        return _Verified(principal, info.expires_at, now + self.cache_s)

    async def _touch(self, key_id: str, now: float) -> None:
        """Record last_used_at, at most once a minute per key; a failure only logs."""
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_INTERVAL_S:
            return
        _put(self._touched, key_id, now)
        try:
            await asyncio.to_thread(self._write_last_used, key_id)
        except _db_errors() as exc:
            log.warning("last_used_at not recorded", extra={"key_id": key_id, "reason": str(exc)})

    def _write_last_used(self, key_id: str) -> None:
        with self.db.session() as session:
            row = session.get(_api_key(), key_id)
            if row is not None:
                row.last_used_at = utcnow()


def _api_key() -> type[ApiKey]:
    from megacity.db.models import ApiKey

    return ApiKey


def _put(cache: OrderedDict[str, T], key: str, value: T) -> None:
    """Insert as the newest entry, dropping the oldest beyond CACHE_ENTRIES."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > CACHE_ENTRIES:
        cache.popitem(last=False)

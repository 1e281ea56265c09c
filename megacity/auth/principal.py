"""Who is calling: the Principal a verified token or API key stands for, and its scopes."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from megacity.errors import Unauthorized

SCOPE_USE = "ai:use"  # call the AI endpoints
SCOPE_ADMIN = "ai:admin"  # operate the router (activate models, bias report, admin API)
KNOWN_SCOPES = frozenset({SCOPE_USE, SCOPE_ADMIN})
ALL_ZONES = "*"  # in a token's "zones" claim and on the command line: every zone

# A subject, a zone or a service name: the characters the X-* headers accept, so a token
# subject can always be compared with (and stand in for) an X-User-Id header.
SAFE_NAME = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")

MAX_GROUP_CHARS = 64  # a group name as the dashboard shows it

PrincipalKind = Literal["token", "api_key", "anonymous"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its subject, scopes and the zones it may use."""

    subject: str  # JWT sub, "service:<name>" for an API key, "anonymous" when auth is off
    scopes: frozenset[str]
    zones: frozenset[str] | None  # None: every zone
    kind: PrincipalKind
    region: str | None = None  # the region whose key signed the token
    credential_id: str | None = None  # kid:jti of a token, id of an API key (never a secret)
    group: str | None = None  # the user group a token names (a school, a class, a plan…)

    def has_scope(self, scope: str) -> bool:
        """True when the principal holds `scope`; ai:admin implies ai:use."""
        return scope in self.scopes or (scope == SCOPE_USE and SCOPE_ADMIN in self.scopes)

    def allows_zone(self, zone: str | None) -> bool:
        """True when the principal may act in `zone`.

        None (the request names no zone and the router has no default) is allowed: no
        zone-bound work can happen then, the zone selector refuses such requests itself.
        """
        return self.zones is None or zone is None or zone in self.zones


ANONYMOUS = Principal("anonymous", KNOWN_SCOPES, None, "anonymous")

REALM = 'Bearer realm="megacity"'


class AuthError(Unauthorized):
    """A request without usable credentials (401); `str()` is the reason, for server logs.

    The client sees only `message`, the same for every cause of a kind, so that the
    answer tells an attacker nothing about why a token failed.
    """

    public_message = "authentication required"
    challenge = REALM

    def __init__(self, reason: str) -> None:
        super().__init__(self.public_message, headers={"WWW-Authenticate": self.challenge})
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class MissingCredentials(AuthError):
    """No Authorization bearer and no X-API-Key."""

    code = "missing_credentials"


class InvalidCredentials(AuthError):
    """A token or key that is malformed, unknown, expired, revoked, or badly signed."""

    code = "invalid_token"
    public_message = "invalid or expired credentials"
    challenge = f'{REALM}, error="invalid_token"'


def parse_scopes(scopes: Collection[str]) -> frozenset[str]:
    """The scopes as a set; ValueError naming any unknown one (or when there are none)."""
    wanted = frozenset(s.strip() for s in scopes if s.strip())
    unknown = sorted(wanted - KNOWN_SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {sorted(KNOWN_SCOPES)}")
    if not wanted:
        raise ValueError("at least one scope is required")
    return wanted


def parse_group(group: str | None) -> str | None:
    """A user group's name (None or blank: no group); ValueError for a bad one."""
    if group is None or not group.strip():
        return None
    name = group.strip()
    if not SAFE_NAME.match(name) or len(name) > MAX_GROUP_CHARS:
        raise ValueError(f"group must be 1..{MAX_GROUP_CHARS} of A-Z a-z 0-9 . _ : @ / -")
    return name


def parse_zones(zones: Collection[str] | None) -> frozenset[str] | None:
    """The zones as a set, None for every zone ("*" or None); ValueError for a bad name."""
    if zones is None:
        return None
    wanted = frozenset(z.strip() for z in zones if z.strip())
    if ALL_ZONES in wanted:
        return None
    bad = sorted(z for z in wanted if not SAFE_NAME.match(z))
    if bad:
        raise ValueError(f"invalid zone name(s): {', '.join(bad)}")
    if not wanted:
        raise ValueError("at least one zone is required ('*' for every zone)")
    return wanted

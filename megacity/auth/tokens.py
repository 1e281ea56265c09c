"""Access tokens: JWTs signed with a region's private key, verified with its public key.

Claims: iss "megacity:<region>", sub, aud "megacity-ai", iat, nbf, exp, jti, scope
(space-separated, as in OAuth), zones (a list, or "*" for every zone) and, optionally,
group (the user group whose usage the dashboard counts the caller's requests under). Only ES256
and RS256 are accepted, and only with the algorithm of the key the kid names, so
neither "none" nor an HMAC signed with a public key (algorithm confusion) gets through.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import jwt

from megacity.auth.keys import ALGORITHMS, KeySet, VerificationKey
from megacity.auth.principal import (
    ALL_ZONES,
    KNOWN_SCOPES,
    MAX_GROUP_CHARS,
    SAFE_NAME,
    InvalidCredentials,
    Principal,
    parse_group,
    parse_scopes,
    parse_zones,
)

ISSUER_PREFIX = "megacity:"
AUDIENCE = "megacity-ai"
MAX_TTL_S = 30 * 24 * 3600
MAX_TOKEN_CHARS = 8192  # a token of ours is well under 1 KiB; longer is refused unparsed
_REQUIRED = ["exp", "iat", "sub", "iss", "aud"]
VERIFIED_CACHE = 4096  # tokens whose signature was checked, kept until they expire

# PyJWT's exception → the reason logged (the client always sees the same message).
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not yet valid (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "issuer does not match the key's region"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.MissingRequiredClaimError, "missing claim"),
    (jwt.DecodeError, "malformed"),
)


def issue_token(
    keys: KeySet,
    region: str,
    *,
    subject: str,
    scopes: Collection[str],
    zones: Collection[str] | None,
    ttl_s: int,
    group: str | None = None,
    now: float | None = None,
) -> str:
    """A token signed with the region's newest key, valid `ttl_s` seconds (1 s..30 days).

    ValueError for an unknown scope, a bad zone, subject or group, or a ttl out of range;
    NoSigningKey when the region has no private key here.
    """
    if not SAFE_NAME.match(subject):
        raise ValueError("subject must be 1..128 of A-Z a-z 0-9 . _ : @ / -")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl must be a whole number of seconds in 1..{MAX_TTL_S}")
    wanted_scopes = parse_scopes(scopes)
    wanted_zones = parse_zones(zones)
    wanted_group = parse_group(group)
    kid, alg, private = keys.signing_key(region)
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": f"{ISSUER_PREFIX}{region}",
        "sub": subject,
        "aud": AUDIENCE,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(sorted(wanted_scopes)),
        "zones": ALL_ZONES if wanted_zones is None else sorted(wanted_zones),
    }
    if wanted_group is not None:
        claims["group"] = wanted_group
    return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    key: VerificationKey  # the very key object that verified it (a reload makes new ones)
    not_before: float
    expires: float


class TokenVerifier:
    """Checks a token's signature and claims against a KeySet; the Principal it stands for.

    A token whose signature checked out is remembered until it expires, as long as the
    key that signed it is still the one the KeySet holds (a reload — rotation, retirement —
    makes every remembered token be checked again): an ES256 verification costs more CPU
    than the rest of a routed request.
    """

    def __init__(
        self,
        keys: KeySet,
        *,
        leeway_s: float = 30.0,
        max_ttl_s: float = MAX_TTL_S,
        audience: str = AUDIENCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.leeway_s = leeway_s
        self.max_ttl_s = max_ttl_s
        self.audience = audience
        self._clock = clock
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    def verify(self, token: str) -> Principal:
        """The token's Principal; InvalidCredentials (its str says why, for logs) otherwise."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidCredentials("token too long")
        known = self._verified.get(token)
        if known is not None:
            now = self._clock()
            if (
                known.not_before - self.leeway_s <= now < known.expires + self.leeway_s
                and self.keys.get(known.key.kid) is known.key
            ):
                return known.principal
            del self._verified[token]
        principal, verified = self._check(token)
        self._verified[token] = verified
        if len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return principal

    def _check(self, token: str) -> tuple[Principal, _Verified]:
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.alg],
                audience=self.audience,
                issuer=f"{ISSUER_PREFIX}{key.region}",
                leeway=self.leeway_s,
                options={"require": _REQUIRED},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidCredentials(_reason(exc, key.kid)) from None
        principal = self._principal(claims, key)
        nbf = claims.get("nbf", claims["iat"])
        not_before = float(nbf) if isinstance(nbf, int | float) else float("-inf")
        return principal, _Verified(principal, key, not_before, float(claims["exp"]))

    def _key_for(self, token: str) -> VerificationKey:
        """The key the header names, checked against the header's algorithm."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidCredentials("malformed") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise InvalidCredentials(f"algorithm not allowed: {str(alg)[:16]!r}")
        if not isinstance(kid, str) or not kid:
            raise InvalidCredentials("missing kid")
        key = self.keys.get(kid)
        if key is None:
            raise InvalidCredentials(self._unknown_key_reason(token, kid))
        if alg != key.alg:
            raise InvalidCredentials(f"algorithm {alg} does not match key {kid} ({key.alg})")
        return key

    def _unknown_key_reason(self, token: str, kid: str) -> str:
        """For the log: an untrusted region's token, or just a kid nobody knows."""
        trusted = self.keys.trusted_regions
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            unverified = {}
        iss = unverified.get("iss")
        if trusted is not None and isinstance(iss, str) and iss.startswith(ISSUER_PREFIX):
            region = iss.removeprefix(ISSUER_PREFIX)
            if region not in trusted:
                return f"untrusted region {region[:63]!r} (kid {kid[:32]!r})"
        return f"unknown kid {kid[:32]!r}"

    def _principal(self, claims: dict[str, Any], key: VerificationKey) -> Principal:
        exp, iat, sub = claims["exp"], claims["iat"], claims["sub"]
        if exp - iat > self.max_ttl_s:
            raise InvalidCredentials(f"token lifetime over max_ttl (kid {key.kid})")
        if not isinstance(sub, str) or not SAFE_NAME.match(sub):
            raise InvalidCredentials(f"invalid subject (kid {key.kid})")
        scope = claims.get("scope")
        scopes = frozenset(scope.split()) & KNOWN_SCOPES if isinstance(scope, str) else frozenset()
        return Principal(
            subject=sub,
            scopes=scopes,
            zones=_zones(claims.get("zones"), key.kid),
            kind="token",
            region=key.region,
            credential_id=f"{key.kid}:{str(claims.get('jti', ''))[:64]}",
            group=_group(claims.get("group"), key.kid),
        )


def _zones(claim: object, kid: str) -> frozenset[str] | None:
    """The zones claim: "*" → None (every zone); a list of zone names → that set."""
    if claim == ALL_ZONES:
        return None
    if isinstance(claim, list) and all(isinstance(z, str) and SAFE_NAME.match(z) for z in claim):
        return frozenset(claim)
    raise InvalidCredentials(f"invalid or missing zones claim (kid {kid})")


def _group(claim: object, kid: str) -> str | None:
    """The optional group claim: absent → None; a name → that name."""
    if claim is None:
        return None
    if isinstance(claim, str) and SAFE_NAME.match(claim) and len(claim) <= MAX_GROUP_CHARS:
        return claim
    raise InvalidCredentials(f"invalid group claim (kid {kid})")


def _reason(exc: jwt.InvalidTokenError, kid: str) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            if isinstance(exc, jwt.MissingRequiredClaimError):
                reason = f"missing claim {exc.claim}"
            return f"{reason} (kid {kid})"
    return f"invalid token: {exc} (kid {kid})"

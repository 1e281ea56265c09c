"""Issuing and verifying tokens: rotation, trust per region, and the classic JWT attacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from megacity.auth.keys import KeySet, generate_key, retire_key
from megacity.auth.principal import InvalidCredentials
from megacity.auth.tokens import AUDIENCE, TokenVerifier, issue_token

REGION = "kr-seoul"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keys(tmp_path: Path) -> KeySet:
    generate_key(tmp_path, REGION)
    return KeySet(tmp_path, trusted_regions=[REGION])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _token(keys: KeySet, **overrides: Any) -> str:
    issue: dict[str, Any] = {"subject": "user-1", "scopes": ["ai:use"], "zones": ["mpcstudy"]}
    issue["ttl_s"] = 600
    issue.update(overrides)
    return issue_token(keys, REGION, **issue)


def _signed(keys: KeySet, claims: dict[str, Any], **header: Any) -> str:
    """A token signed with the region's real key, with claims of the test's choosing."""
    kid, alg, private = keys.signing_key(REGION)
    return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid, **header})


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": f"megacity:{REGION}",
        "sub": "user-1",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "j1",
        "scope": "ai:use",
        "zones": ["mpcstudy"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _refused(keys: KeySet, token: str, reason: str, **verifier: Any) -> None:
    with pytest.raises(InvalidCredentials) as caught:
        TokenVerifier(keys, **verifier).verify(token)
    assert reason in str(caught.value)
    assert caught.value.message == "invalid or expired credentials"  # the same for every cause


def test_an_issued_token_verifies_to_its_principal(keys: KeySet) -> None:
    token = _token(keys, scopes=["ai:use", "ai:admin"], zones=["mpcstudy", "my-ktube"])
    header, claims, _ = _parts(token)
    assert header["alg"] == "ES256" and header["kid"] == keys.signing_key(REGION)[0]
    assert claims["iss"] == "megacity:kr-seoul" and claims["aud"] == "megacity-ai"
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"]
    assert claims["scope"] == "ai:admin ai:use" and len(claims["jti"]) == 32
    principal = TokenVerifier(keys).verify(token)
    assert principal.subject == "user-1" and principal.kind == "token"
    assert principal.scopes == {"ai:use", "ai:admin"}
    assert principal.zones == {"mpcstudy", "my-ktube"}
    assert principal.region == REGION
    assert principal.credential_id == f"{header['kid']}:{claims['jti']}"


def test_a_group_claim_is_carried_on_the_principal(keys: KeySet) -> None:
    token = issue_token(
        keys, REGION, subject="u", scopes=["ai:use"], zones=["z"], ttl_s=60, group="school-7"
    )
    assert _parts(token)[1]["group"] == "school-7"
    assert TokenVerifier(keys).verify(token).group == "school-7"
    plain = _token(keys)
    assert "group" not in _parts(plain)[1] and TokenVerifier(keys).verify(plain).group is None
    for bad in ("two words", "x" * 65, "<script>"):
        with pytest.raises(ValueError, match="group"):
            issue_token(
                keys, REGION, subject="u", scopes=["ai:use"], zones=None, ttl_s=60, group=bad
            )
    for claim in (["a", "b"], 7, "bad group", "g" * 65):
        _refused(keys, _signed(keys, _claims(group=claim)), "invalid group claim")


def test_all_zones_and_unknown_scopes(keys: KeySet) -> None:
    principal = TokenVerifier(keys).verify(_token(keys, zones=["*"]))
    assert principal.zones is None and principal.allows_zone("anything")
    principal = TokenVerifier(keys).verify(_signed(keys, _claims(scope="ai:use root superuser")))
    assert principal.scopes == {"ai:use"}  # unknown scopes are dropped, never trusted


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scopes": ["ai:root"]}, "unknown scope"),
        ({"scopes": []}, "at least one scope"),
        ({"ttl_s": 0}, "ttl"),
        ({"ttl_s": 31 * 86400}, "ttl"),
        ({"subject": "a b"}, "subject"),
        ({"subject": "x" * 129}, "subject"),
        ({"zones": ["bad zone"]}, "zone"),
        ({"zones": []}, "zone"),
    ],
)
def test_issue_validates_its_input(keys: KeySet, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _token(keys, **overrides)


def test_rotation_keeps_old_tokens_until_the_old_key_is_retired(tmp_path: Path) -> None:
    clock = FakeClock()
    old = generate_key(tmp_path, REGION)
    keys = KeySet(tmp_path, reload_interval_s=10, clock=clock)
    verifier = TokenVerifier(keys)
    token_a = _token(keys)
    new = generate_key(tmp_path, "kr-seoul", "RS256")  # rotate (to another algorithm, too)
    issuer = KeySet(tmp_path)  # the issuing side sees the new key at once
    token_b = issue_token(issuer, REGION, subject="user-2", scopes=["ai:use"], zones=None, ttl_s=60)
    assert _parts(token_b)[0]["kid"] == new != old
    # The verifier learns the new kid without waiting for its reload interval.
    assert verifier.verify(token_b).subject == "user-2"
    assert verifier.verify(token_a).subject == "user-1"
    retire_key(tmp_path, REGION, old)
    clock.now += 9
    assert verifier.verify(token_a).subject == "user-1"  # until the next reload
    clock.now += 1
    _refused(keys, token_a, "unknown kid")
    assert verifier.verify(token_b).subject == "user-2"


def test_a_region_that_is_not_trusted_is_refused(tmp_path: Path) -> None:
    generate_key(tmp_path, REGION)
    generate_key(tmp_path, "eu-west")
    everything = KeySet(tmp_path)
    foreign = issue_token(
        everything, "eu-west", subject="u", scopes=["ai:use"], zones=None, ttl_s=60
    )
    assert TokenVerifier(everything).verify(foreign).region == "eu-west"
    _refused(KeySet(tmp_path, trusted_regions=[REGION]), foreign, "untrusted region 'eu-west'")


def test_a_token_claiming_another_region_is_refused(tmp_path: Path) -> None:
    generate_key(tmp_path, REGION)
    generate_key(tmp_path, "us-east")
    keys = KeySet(tmp_path)
    # Signed by kr-seoul's key but claiming to come from us-east (also trusted).
    token = _signed(keys, _claims(iss="megacity:us-east"))
    _refused(keys, token, "issuer does not match the key's region")


def test_a_tampered_payload_or_signature_is_refused(keys: KeySet) -> None:
    token = _token(keys)
    header, payload, signature = token.split(".")
    claims = _parts(token)[1]
    claims["scope"] = "ai:admin ai:use"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _refused(keys, forged, "bad signature")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    _refused(keys, f"{header}.{payload}.{flipped}", "bad signature")
    _refused(keys, "not.a.jwt", "malformed")
    _refused(keys, "garbage", "malformed")


def test_alg_none_is_refused(keys: KeySet) -> None:
    kid = keys.signing_key(REGION)[0]
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    token = f"{header}.{_b64(json.dumps(_claims()).encode())}."
    _refused(keys, token, "algorithm not allowed")


def test_hs256_signed_with_the_public_key_is_refused(keys: KeySet) -> None:
    """The algorithm-confusion attack: an HMAC keyed with the (public) verification key."""
    kid, _, private = keys.signing_key(REGION)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(_claims(scope="ai:admin")).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    _refused(keys, f"{header}.{payload}.{_b64(mac)}", "algorithm not allowed")


def test_an_algorithm_other_than_the_keys_is_refused(tmp_path: Path) -> None:
    generate_key(tmp_path, REGION, "RS256")
    keys = KeySet(tmp_path)
    kid, _, private = keys.signing_key(REGION)
    token = jwt.encode(_claims(), private, algorithm="RS512", headers={"kid": kid})
    _refused(keys, token, "algorithm not allowed")
    token = jwt.encode(_claims(), private, algorithm="PS256", headers={"kid": kid})
    _refused(keys, token, "algorithm not allowed")
    # An allowed algorithm, but not this key's: refused before any signature check.
    token = jwt.encode(_claims(), private, algorithm="RS256", headers={"kid": kid})
    _, payload, signature = token.split(".")
    header = _b64(json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid}).encode())
    _refused(keys, f"{header}.{payload}.{signature}", "does not match key")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": -120, "iat": -720}, "expired"),
        ({"nbf": 600, "exp": 1200}, "not yet valid"),
        ({"aud": "someone-else"}, "wrong audience"),
        ({"iss": "megacity:elsewhere"}, "issuer does not match"),
        ({"iss": "https://evil.example"}, "issuer does not match"),
        ({"sub": None}, "missing claim sub"),
        ({"exp": None}, "missing claim exp"),
        ({"iat": None}, "missing claim iat"),
        ({"zones": None}, "zones claim"),
        ({"zones": "mpcstudy"}, "zones claim"),
        ({"sub": "has space"}, "invalid subject"),
    ],
)
def test_bad_claims_are_refused(keys: KeySet, claims: dict[str, Any], reason: str) -> None:
    # exp/iat/nbf are offsets from now, taken when the test runs: parameters are built at
    # collection, which can be many minutes earlier in a long suite.
    now = int(time.time())
    timed = {k: now + v for k, v in claims.items() if k in ("exp", "iat", "nbf") and v}
    _refused(keys, _signed(keys, _claims(**{**claims, **timed})), reason)


def test_a_little_clock_skew_is_tolerated(keys: KeySet) -> None:
    now = int(time.time())
    token = _signed(keys, _claims(iat=now + 10, nbf=now + 10, exp=now + 600))
    assert TokenVerifier(keys, leeway_s=30).verify(token).subject == "user-1"
    _refused(keys, token, "not yet valid", leeway_s=0)


def test_a_missing_or_unknown_kid_is_refused(keys: KeySet) -> None:
    _, alg, private = keys.signing_key(REGION)
    _refused(keys, jwt.encode(_claims(), private, algorithm=alg), "missing kid")
    unknown = jwt.encode(_claims(), private, algorithm=alg, headers={"kid": "ZZZZZZZZZZZZZZZZ"})
    _refused(keys, unknown, "unknown kid")


def test_a_lifetime_over_the_maximum_is_refused(keys: KeySet) -> None:
    now = int(time.time())
    token = _signed(keys, _claims(iat=now, exp=now + 7200))
    assert TokenVerifier(keys, max_ttl_s=7200).verify(token).subject == "user-1"
    _refused(keys, token, "lifetime over max_ttl", max_ttl_s=3600)


def test_an_oversized_token_is_refused_unparsed(keys: KeySet) -> None:
    _refused(keys, "a" * 10_000, "too long")


# --- the verified-token cache ----------------------------------------------------------


def test_a_verified_token_is_remembered_until_it_expires(keys: KeySet) -> None:
    clock = FakeClock()
    verifier = TokenVerifier(keys, leeway_s=0.0, clock=clock)
    token = _token(keys, ttl_s=60)
    clock.now = time.time()  # after the token's nbf (whole seconds), never a moment before
    first = verifier.verify(token)
    calls = 0
    real = verifier._check

    def counting(t: str) -> Any:
        nonlocal calls
        calls += 1
        return real(t)

    verifier._check = counting  # type: ignore[method-assign]
    assert verifier.verify(token) == first
    assert calls == 0  # no second signature check
    clock.now += 61  # past its exp: the cache no longer answers, the signature is checked again
    verifier.verify(token)  # (PyJWT itself reads the real clock, where it is still valid)
    assert calls == 1


def test_a_retired_key_refuses_its_remembered_tokens_after_reload(
    keys: KeySet, tmp_path: Path
) -> None:
    verifier = TokenVerifier(keys)
    token = _token(keys)
    principal = verifier.verify(token)
    kid = (principal.credential_id or "").partition(":")[0]
    assert retire_key(tmp_path, REGION, kid)
    keys.reload()
    with pytest.raises(InvalidCredentials):
        verifier.verify(token)


def test_a_forged_token_is_never_served_from_the_cache(keys: KeySet) -> None:
    verifier = TokenVerifier(keys)
    token = _token(keys)
    verifier.verify(token)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(InvalidCredentials):
        verifier.verify(tampered)

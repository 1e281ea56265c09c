"""Signing keys on disk: generation, kids (RFC 7638 thumbprints), JWKS, reloads, bad files."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from megacity.auth.keys import (
    KeySet,
    NoSigningKey,
    generate_key,
    key_id,
    retire_key,
    thumbprint,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# RFC 7638 section 3.1: this RSA key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
    "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQ"
    "MicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2N"
    "cRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)


def test_thumbprint_matches_the_rfc_7638_example() -> None:
    key = RSAAlgorithm.from_jwk({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"})
    assert isinstance(key, rsa.RSAPublicKey)
    assert thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert key_id(key) == "NzbLsXh8uDCcd-6M"


@pytest.mark.parametrize(
    ("alg", "kind"), [("ES256", ec.EllipticCurvePublicKey), ("RS256", rsa.RSAPublicKey)]
)
def test_generate_writes_a_key_pair_named_by_its_kid(tmp_path: Path, alg: str, kind: type) -> None:
    kid = generate_key(tmp_path, "kr-seoul", alg)  # type: ignore[arg-type]
    folder = tmp_path / "kr-seoul"
    assert sorted(p.name for p in folder.iterdir()) == [f"{kid}.key.pem", f"{kid}.pub.pem"]
    assert stat.S_IMODE((folder / f"{kid}.key.pem").stat().st_mode) == 0o600
    keys = KeySet(tmp_path)
    loaded = keys.get(kid)
    assert loaded is not None and loaded.region == "kr-seoul" and loaded.alg == alg
    assert isinstance(loaded.key, kind)
    assert key_id(loaded.key) == kid and len(kid) == 16
    signing_kid, signing_alg, private = keys.signing_key("kr-seoul")
    assert (signing_kid, signing_alg) == (kid, alg)
    assert key_id(private.public_key()) == kid
    if alg == "RS256":
        assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 3072


@pytest.mark.parametrize("region", ["", "KR", "kr_seoul", "../etc", "a" * 64])
def test_region_names_are_checked(tmp_path: Path, region: str) -> None:
    with pytest.raises(ValueError, match="region"):
        generate_key(tmp_path, region)


def test_jwks_lists_the_trusted_regions_public_keys_only(tmp_path: Path) -> None:
    seoul = generate_key(tmp_path, "kr-seoul")
    tokyo = generate_key(tmp_path, "jp-tokyo", "RS256")
    generate_key(tmp_path, "eu-west")
    jwks = KeySet(tmp_path, trusted_regions=["kr-seoul", "jp-tokyo"]).jwks()
    by_kid = {k["kid"]: k for k in jwks["keys"]}
    assert set(by_kid) == {seoul, tokyo}
    assert by_kid[seoul]["kty"] == "EC" and by_kid[seoul]["crv"] == "P-256"
    assert by_kid[tokyo]["kty"] == "RSA" and by_kid[tokyo]["e"] == "AQAB"
    for kid, jwk in by_kid.items():
        assert jwk["use"] == "sig" and jwk["alg"] in ("ES256", "RS256")
        assert jwk["region"] == ("kr-seoul" if kid == seoul else "jp-tokyo")
        assert not {"d", "p", "q", "dp", "dq", "qi", "key_ops"} & set(jwk)  # public only


def test_every_region_folder_is_trusted_by_default(tmp_path: Path) -> None:
    kids = {generate_key(tmp_path, r) for r in ("kr-seoul", "us-east")}
    (tmp_path / "Not_A_Region").mkdir()
    assert {k.kid for k in KeySet(tmp_path).loaded()} == kids


def test_the_newest_private_key_signs(tmp_path: Path) -> None:
    old = generate_key(tmp_path, "kr-seoul")
    new = generate_key(tmp_path, "kr-seoul")
    folder = tmp_path / "kr-seoul"
    os.utime(folder / f"{old}.key.pem", (1_000_000, 1_000_000))
    os.utime(folder / f"{new}.key.pem", (2_000_000, 2_000_000))
    keys = KeySet(tmp_path)
    assert keys.signing_key("kr-seoul")[0] == new
    os.utime(folder / f"{old}.key.pem", (3_000_000, 3_000_000))
    assert keys.signing_key("kr-seoul")[0] == old


def test_a_region_without_a_private_key_cannot_sign(tmp_path: Path) -> None:
    kid = generate_key(tmp_path, "kr-seoul")
    (tmp_path / "kr-seoul" / f"{kid}.key.pem").unlink()
    keys = KeySet(tmp_path)
    assert keys.get(kid) is not None  # still verifies
    with pytest.raises(NoSigningKey, match="kr-seoul"):
        keys.signing_key("kr-seoul")
    with pytest.raises(NoSigningKey):
        keys.signing_key("us-east")


def test_corrupt_and_misnamed_files_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = generate_key(tmp_path, "kr-seoul")
    other = generate_key(tmp_path, "kr-seoul")
    folder = tmp_path / "kr-seoul"
    (folder / "AAAAAAAAAAAAAAAA.pub.pem").write_bytes(b"-----BEGIN PUBLIC KEY-----\ngarbage\n")
    (folder / "BBBBBBBBBBBBBBBB.pub.pem").write_bytes((folder / f"{other}.pub.pem").read_bytes())
    (folder / f"{other}.pub.pem").unlink()
    os.utime(folder / f"{other}.key.pem", (9e9, 9e9))  # the newest, but without a public half
    (folder / f"{good}.key.pem").touch()
    with caplog.at_level(logging.WARNING, logger="megacity.auth"):
        keys = KeySet(tmp_path)
    assert [k.kid for k in keys.loaded()] == [good]
    assert sum("key file skipped" in r.message for r in caplog.records) == 2
    # A corrupt newest private key is skipped for the next usable one.
    (folder / f"{other}.key.pem").write_bytes(b"not a key")
    assert keys.signing_key("kr-seoul")[0] == good


def test_retire_removes_both_files(tmp_path: Path) -> None:
    kid = generate_key(tmp_path, "kr-seoul")
    assert retire_key(tmp_path, "kr-seoul", kid) is True
    assert list((tmp_path / "kr-seoul").iterdir()) == []
    assert retire_key(tmp_path, "kr-seoul", kid) is False
    with pytest.raises(ValueError, match="kid"):
        retire_key(tmp_path, "kr-seoul", "../../etc/passwd")


def test_changes_on_disk_are_seen_after_the_reload_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    first = generate_key(tmp_path, "kr-seoul")
    keys = KeySet(tmp_path, reload_interval_s=10, clock=clock)
    retire_key(tmp_path, "kr-seoul", first)
    clock.now += 5
    assert keys.get(first) is not None  # not rescanned yet
    clock.now += 5
    assert keys.get(first) is None


def test_an_unknown_kid_rescans_at_once_but_at_most_once_a_second(tmp_path: Path) -> None:
    clock = FakeClock()
    generate_key(tmp_path, "kr-seoul")
    keys = KeySet(tmp_path, reload_interval_s=3600, clock=clock)
    assert keys.get("AAAAAAAAAAAAAAAA") is None  # the one rescan of this second
    new = generate_key(tmp_path, "kr-seoul")
    clock.now += 0.5
    assert keys.get(new) is None  # a flood of unknown kids costs one scan a second
    clock.now += 0.5
    assert keys.get(new) is not None

"""Signing keys per region on disk, the KeySet that verifies with them, and their JWKS.

Layout (one folder per region; a router trusts the regions whose public keys it has)::

    <keys_dir>/<region>/<kid>.pub.pem   public key: every router that trusts the region
    <keys_dir>/<region>/<kid>.key.pem   private key: only where tokens are issued (mode 600)

The kid is the key's RFC 7638 JWK thumbprint (its first 16 characters), so the same key
always has the same kid and a file renamed by hand is noticed. Rotation needs no
restart: `generate_key` adds a key (the newest private key signs), routers see new
public keys at once (an unknown kid triggers a rescan) and retired ones within
`reload_interval_s`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

log = logging.getLogger("megacity.auth")

Algorithm = Literal["ES256", "RS256"]
ALGORITHMS: tuple[Algorithm, ...] = ("ES256", "RS256")
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

REGION_NAME = re.compile(r"^[a-z0-9-]{1,63}$")
KID = re.compile(r"^[A-Za-z0-9_-]{16}$")
PUBLIC_SUFFIX = ".pub.pem"
PRIVATE_SUFFIX = ".key.pem"
RSA_BITS = 3072
MIN_RSA_BITS = 2048  # keys written by other tools are accepted down to this size
_MISS_RESCAN_S = 1.0  # an unknown kid rescans the folder at most this often


class NoSigningKey(LookupError):
    """The region has no usable private key here (generate one with `megacity keys`)."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key a token may be signed with; `created` is its file's mtime (epoch s)."""

    kid: str
    region: str
    alg: str
    key: PublicKey
    created: float


def check_region(region: str) -> str:
    """The region name itself; ValueError unless it is 1..63 of [a-z0-9-]."""
    if not REGION_NAME.match(region):
        raise ValueError(f"invalid region name {region!r}: use 1..63 of a-z, 0-9 and '-'")
    return region


def public_jwk(key: PublicKey) -> dict[str, Any]:
    """The key as a public JWK dict (kty, crv/x/y or n/e), without kid or alg."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        jwk = dict(ECAlgorithm.to_jwk(key, as_dict=True))
    else:
        jwk = dict(RSAAlgorithm.to_jwk(key, as_dict=True))
    jwk.pop("key_ops", None)  # the JWKS says "use": "sig"; RFC 7517 asks for one, not both
    return jwk


def thumbprint(key: PublicKey) -> str:
    """The RFC 7638 JWK thumbprint: base64url (no padding) SHA-256 of the required members."""
    jwk = public_jwk(key)
    required = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def key_id(key: PublicKey) -> str:
    """The kid of a key: the first 16 characters of its thumbprint."""
    return thumbprint(key)[:16]


def key_algorithm(key: PublicKey) -> str | None:
    """ES256 for a P-256 key, RS256 for an RSA key of at least 2048 bits, else None."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES256" if isinstance(key.curve, ec.SECP256R1) else None
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256" if key.key_size >= MIN_RSA_BITS else None
    return None


def generate_key(keys_dir: Path, region: str, alg: Algorithm = "ES256") -> str:
    """Create a key pair for `region` (both files written atomically); its kid."""
    check_region(region)
    private: PrivateKey
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        raise ValueError(f"unsupported algorithm {alg!r}: use one of {', '.join(ALGORITHMS)}")
    kid = key_id(private.public_key())
    folder = Path(keys_dir) / region
    folder.mkdir(parents=True, exist_ok=True)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The public key first: a private key without its public half would sign tokens
    # that no router accepts.
    _write_atomic(folder / f"{kid}{PUBLIC_SUFFIX}", public_pem, 0o644)
    _write_atomic(folder / f"{kid}{PRIVATE_SUFFIX}", private_pem, 0o600)
    log.info("signing key generated", extra={"region": region, "kid": kid, "alg": alg})
    return kid


def retire_key(keys_dir: Path, region: str, kid: str) -> bool:
    """Delete a key's files; its tokens are refused once routers reload. False if absent."""
    check_region(region)
    if not KID.match(kid):
        raise ValueError(f"invalid kid {kid!r}")
    removed = False
    for suffix in (PRIVATE_SUFFIX, PUBLIC_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            (Path(keys_dir) / region / f"{kid}{suffix}").unlink()
            removed = True
    if removed:
        log.info("signing key retired", extra={"region": region, "kid": kid})
    return removed


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file in the same folder and os.replace (never a half file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class KeySet:
    """The public keys of the trusted regions, reloaded from disk as they change."""

    def __init__(
        self,
        keys_dir: Path,
        *,
        trusted_regions: Collection[str] | None = None,
        reload_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys_dir = Path(keys_dir)
        self.trusted_regions = (
            None if trusted_regions is None else frozenset(map(check_region, trusted_regions))
        )
        self.reload_interval_s = reload_interval_s
        self._clock = clock
        self._keys: dict[str, VerificationKey] = {}
        self._fingerprint: tuple[tuple[str, str, int, int], ...] = ()
        self.reload()
        self._checked = clock()
        self._missed = float("-inf")  # the first unknown kid rescans at once

    def get(self, kid: str) -> VerificationKey | None:
        """The key with this kid, or None; rescans the folder when it may have changed."""
        now = self._clock()
        if now - self._checked >= self.reload_interval_s:
            self._checked = now
            self._refresh()
        key = self._keys.get(kid)
        if key is None and now - self._missed >= _MISS_RESCAN_S:
            self._missed = now
            self._refresh()
            key = self._keys.get(kid)
        return key

    def loaded(self) -> list[VerificationKey]:
        """Every loaded key, by region then age (oldest first)."""
        return sorted(self._keys.values(), key=lambda k: (k.region, k.created, k.kid))

    def jwks(self) -> dict[str, Any]:
        """The JWK Set of the trusted regions' public keys (each with a "region" member)."""
        return {
            "keys": [
                {**public_jwk(k.key), "kid": k.kid, "alg": k.alg, "use": "sig", "region": k.region}
                for k in self.loaded()
            ]
        }

    def signing_key(self, region: str) -> tuple[str, str, PrivateKey]:
        """(kid, alg, private key) of the region's newest private key; NoSigningKey if none."""
        folder = self.keys_dir / check_region(region)
        candidates = []
        for path in _files(folder, PRIVATE_SUFFIX):
            with contextlib.suppress(OSError):
                candidates.append((path.stat().st_mtime_ns, path.name, path))
        for _, _, path in sorted(candidates, reverse=True):
            loaded = _load_private(path)
            if loaded is not None:
                return loaded
        raise NoSigningKey(f"no private key for region {region!r} in {folder}")

    def reload(self) -> None:
        """Read every trusted region's public keys again."""
        self._fingerprint = self._scan()
        keys: dict[str, VerificationKey] = {}
        for region in self._regions():
            for path in _files(self.keys_dir / region, PUBLIC_SUFFIX):
                key = _load_public(path, region)
                if key is None:
                    continue
                if key.kid in keys:
                    log.warning(
                        "key file skipped: the same key is in two regions",
                        extra={"path": str(path), "kid": key.kid},
                    )
                    continue
                keys[key.kid] = key
        self._keys = keys  # one assignment: readers see the old or the new set

    def _refresh(self) -> None:
        if self._scan() != self._fingerprint:
            self.reload()

    def _regions(self) -> list[str]:
        if self.trusted_regions is not None:
            return sorted(self.trusted_regions)
        try:
            entries = sorted(os.scandir(self.keys_dir), key=lambda e: e.name)
        except OSError:
            return []
        return [e.name for e in entries if REGION_NAME.match(e.name) and e.is_dir()]

    def _scan(self) -> tuple[tuple[str, str, int, int], ...]:
        """Name, mtime and size of every public key file: cheap, and changes with any edit."""
        seen = []
        for region in self._regions():
            for path in _files(self.keys_dir / region, PUBLIC_SUFFIX):
                with contextlib.suppress(OSError):
                    st = path.stat()
                    seen.append((region, path.name, st.st_mtime_ns, st.st_size))
        return tuple(seen)


def _files(folder: Path, suffix: str) -> list[Path]:
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(suffix))
    except OSError:
        return []
    return [folder / n for n in names if not n.startswith(".")]


def _load_public(path: Path, region: str) -> VerificationKey | None:
    """The key in a .pub.pem file, or None (logged) when it cannot be used."""
    try:
        raw = path.read_bytes()
        created = path.stat().st_mtime
        key = serialization.load_pem_public_key(raw)
    except (OSError, ValueError, TypeError) as exc:
        log.warning("key file skipped: unreadable", extra={"path": str(path), "reason": str(exc)})
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        log.warning("key file skipped: not an EC or RSA key", extra={"path": str(path)})
        return None
    alg = key_algorithm(key)
    kid = path.name.removesuffix(PUBLIC_SUFFIX)
    if alg is None or kid != key_id(key):
        log.warning(
            "key file skipped: unsupported key, or its name is not its kid",
            extra={"path": str(path)},
        )
        return None
    return VerificationKey(kid, region, alg, key, created)


def _load_private(path: Path) -> tuple[str, str, PrivateKey] | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        log.warning("key file skipped: unreadable", extra={"path": str(path), "reason": str(exc)})
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        log.warning("key file skipped: not an EC or RSA key", extra={"path": str(path)})
        return None
    alg = key_algorithm(key.public_key())
    kid = path.name.removesuffix(PRIVATE_SUFFIX)
    if alg is None or kid != key_id(key.public_key()):
        log.warning(
            "key file skipped: unsupported key, or its name is not its kid",
            extra={"path": str(path)},
        )
        return None
    return kid, alg, key

"""Keyed hashes of user ids: what logs, metrics and limit buckets hold instead of the ids.

HMAC-SHA256 with a secret key, so the hash can't be reversed by hashing a list of
known ids; the same id always gives the same hash (per key), so an operator can still
follow one user's requests, and with the key can check whether a given id made them.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from megacity.config.settings import Settings
from megacity.storage.signing import MIN_KEY_BYTES, load_or_create_key_file

KEY_FILE = "user-hash.key"
_HEX = 20  # 80 bits of the digest: collisions are negligible at platform scale


class UserHasher:
    """`hasher(user_id)` → "u_<20 hex>"; None or "" → "anonymous"; `shared(...)` → "s_…"."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the user hash key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def __call__(self, user_id: str | None) -> str:
        if not user_id:
            return "anonymous"
        return "u_" + self._digest(user_id)

    def shared(self, caller: str) -> str:
        """ "s_<20 hex>": a caller acting for people it does not name (a service key at one
        client address), so that logs and the admin API tell it from a learner."""
        return "s_" + self._digest(caller)

    def _digest(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:_HEX]

    @classmethod
    def from_settings(cls, settings: Settings) -> UserHasher:
        """MEGACITY_USER_HASH_KEY, or a key file kept in data_dir (made on first use)."""
        if settings.user_hash_key is not None:
            return cls(settings.user_hash_key.get_secret_value().encode("utf-8"))
        return cls(load_or_create_key_file(Path(settings.data_dir) / KEY_FILE))

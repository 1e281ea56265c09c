"""Object storage: a key layout, one store interface, a local-folder store, signed URLs."""

from __future__ import annotations

from pathlib import Path

from megacity.config.settings import Settings
from megacity.storage.base import ObjectInfo, ObjectReader, ObjectStore, check_content_type
from megacity.storage.keys import Kind, ObjectKey, kind_of, validate_key, validate_prefix
from megacity.storage.local import LocalObjectStore
from megacity.storage.signing import URLSigner, public_base_url, signing_key


def build_object_store(settings: Settings) -> ObjectStore:
    """The store the settings describe: a local folder (storage_dir, or data_dir/objects)."""
    root = settings.storage_dir or Path(settings.data_dir) / "objects"
    signer = URLSigner(
        signing_key(settings),
        public_base_url(settings),
        default_ttl_s=settings.signed_url_ttl_s,
    )
    return LocalObjectStore(root, signer)


__all__ = [
    "Kind",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectKey",
    "ObjectReader",
    "ObjectStore",
    "URLSigner",
    "build_object_store",
    "check_content_type",
    "kind_of",
    "validate_key",
    "validate_prefix",
]

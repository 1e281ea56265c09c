"""Object storage: a key layout, one store interface, local-folder and S3 stores, signed URLs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from megacity.config.settings import Settings
from megacity.storage.base import ObjectInfo, ObjectReader, ObjectStore, check_content_type
from megacity.storage.keys import Kind, ObjectKey, kind_of, validate_key, validate_prefix
from megacity.storage.local import LocalObjectStore
from megacity.storage.signing import URLSigner, public_base_url, signing_key

if TYPE_CHECKING:
    from megacity.storage.s3 import S3ObjectStore


def __getattr__(name: str) -> Any:
    # boto3 loads only when an S3 store is used (it costs start-up time and memory).
    if name == "S3ObjectStore":
        from megacity.storage.s3 import S3ObjectStore

        return S3ObjectStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_object_store(settings: Settings) -> ObjectStore:
    """The store the settings describe: S3 when S3_BUCKET is set, else a local folder."""
    if settings.s3_bucket or settings.s3_endpoint_url:
        return build_s3_store(settings)
    root = settings.storage_dir or Path(settings.data_dir) / "objects"
    signer = URLSigner(
        signing_key(settings),
        public_base_url(settings),
        default_ttl_s=settings.signed_url_ttl_s,
    )
    return LocalObjectStore(root, signer)


def build_s3_store(settings: Settings) -> S3ObjectStore:
    """The S3-compatible store of the S3_* settings; ValueError when S3_BUCKET is missing."""
    if not settings.s3_bucket:
        raise ValueError("S3_ENDPOINT_URL is set but S3_BUCKET is not")
    from megacity.storage.s3 import S3ObjectStore

    secret = settings.s3_secret_access_key
    return S3ObjectStore(
        settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
        region=settings.s3_region,
        prefix=settings.s3_prefix,
        default_ttl_s=settings.signed_url_ttl_s,
        connect_timeout_s=settings.s3_connect_timeout_s,
        read_timeout_s=settings.s3_read_timeout_s,
        max_attempts=settings.s3_max_attempts,
    )


__all__ = [
    "Kind",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectKey",
    "ObjectReader",
    "ObjectStore",
    "S3ObjectStore",
    "URLSigner",
    "build_object_store",
    "build_s3_store",
    "check_content_type",
    "kind_of",
    "validate_key",
    "validate_prefix",
]

"""S3ObjectStore: objects in an S3-compatible bucket (MinIO, Cloudflare R2, Backblaze B2, AWS).

The content type is the object's Content-Type; the SHA-256 goes in user metadata
(x-amz-meta-sha256) because S3-compatible stores disagree on native checksums. Requests
use path-style addressing and send checksums only when an operation requires one (the
newer botocore defaults break several S3-compatible stores); payload signing stays on, so
the server checks the SHA-256 of every upload. Keys are checked (keys.validate_key)
before any request. A missing object is NotFound (object_not_found); an unreachable or
failing store is ServiceUnavailable (storage_unavailable, 503) and a refusing one (bad
credentials, no bucket) UpstreamError (storage_failed, 502): the bucket is named, never
the credentials.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from megacity.errors import MegaCityError, NotFound, ServiceUnavailable, UpstreamError
from megacity.storage.base import (
    CHUNK_BYTES,
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectReader,
    check_content_type,
)
from megacity.storage.keys import validate_key, validate_prefix

SHA256_META = "sha256"
_MISSING = {"404", "NoSuchKey", "NotFound"}
_LIST_PAGE = 1000


class S3ObjectStore:
    """An ObjectStore on one bucket (under an optional key prefix); presigned GET URLs."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        prefix: str = "",
        default_ttl_s: int = 3600,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        if not bucket:
            raise ValueError("S3_BUCKET is empty")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        validate_prefix(prefix, "S3_PREFIX")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.default_ttl_s = default_ttl_s
        config = Config(
            region_name=region,
            signature_version="s3v4",
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": "path", "payload_signing_enabled": True},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3ObjectStore({self.bucket!r}{where}, prefix={self.prefix!r})"

    # --- ObjectStore ---------------------------------------------------------------------

    def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        content_type = check_content_type(content_type)
        name = self._name(key)
        info = ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest(), content_type)
        with self._errors(key):
            self.client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                ContentType=content_type,
                Metadata={SHA256_META: info.sha256},
            )
        return info

    def get(self, key: str) -> bytes:
        with self.open(key) as reader:
            return reader.read()

    def open(self, key: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        name = self._name(key)
        if length == 0:
            return _empty(self.stat(key), offset)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            params["Range"] = f"bytes={offset}-{end}"
        with self._errors(key):
            try:
                response = self.client.get_object(**params)
            except ClientError as exc:
                if _code(exc) != "InvalidRange":  # the range starts past the end
                    raise
                response = None
        if response is None:
            info = self.stat(key)
            return _empty(info, min(offset, info.size))
        size = _total_size(response)
        info = self._info(key, response, size)
        start = min(offset, size)
        body = _Body(response["Body"], key)
        return ObjectReader(info, body, offset=start, length=int(response["ContentLength"]))

    def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)
        with self._errors(key):
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        return self._info(key, head, int(head["ContentLength"]))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> bool:
        # S3's DELETE succeeds for a missing key too: ask first to answer the question.
        existed = self.exists(key)
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        return existed

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        found: list[str] = []
        with self._errors(prefix or "/"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket,
                Prefix=self.prefix + prefix,
                PaginationConfig={"PageSize": _LIST_PAGE},
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = str(item["Key"])[len(self.prefix) :]
                    if _is_key(key):  # objects others wrote under odd names are not ours
                        found.append(key)
        return sorted(found)

    def signed_url(self, key: str, ttl_s: int | None = None) -> str:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise ValueError("ttl_s must be positive")
        name = self._name(key)
        with self._errors(key):
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": name}, ExpiresIn=ttl
            )
        return url

    # --- helpers -------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        """The bucket key of a checked store key."""
        return self.prefix + validate_key(key)

    def _info(self, key: str, response: dict[str, Any], size: int) -> ObjectInfo:
        content_type = str(response.get("ContentType") or DEFAULT_CONTENT_TYPE)
        sha256 = (response.get("Metadata") or {}).get(SHA256_META, "")
        if len(sha256) != 64:  # written by another tool: hash it once, as the local store does
            sha256 = self._hash(key)
        return ObjectInfo(key, size, sha256, content_type)

    def _hash(self, key: str) -> str:
        digest = hashlib.sha256()
        with self._errors(key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
            try:
                while chunk := body.read(CHUNK_BYTES):
                    digest.update(chunk)
            finally:
                body.close()
        return digest.hexdigest()

    def _errors(self, key: str) -> _ErrorMap:
        return _ErrorMap(self.bucket, key)


class _ErrorMap:
    """Turns botocore's exceptions into the domain's: NotFound, 503 or 502."""

    def __init__(self, bucket: str, key: str) -> None:
        self.bucket = bucket
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, MegaCityError):
            return
        if isinstance(exc, ClientError):
            raise _client_error(exc, self.bucket, self.key) from exc
        if isinstance(exc, BotoCoreError):
            raise _unavailable(self.bucket, type(exc).__name__) from exc


def _client_error(exc: ClientError, bucket: str, key: str) -> MegaCityError:
    code = _code(exc)
    if code in _MISSING:
        return NotFound(f"no object with key {key!r}", code="object_not_found", param="key")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
        return _unavailable(bucket, code)
    return UpstreamError(
        f"the object store refused the request on bucket {bucket!r}: {code}",
        code="storage_failed",
    )


def _unavailable(bucket: str, reason: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the object store (bucket {bucket!r}) is unavailable: {reason}",
        code="storage_unavailable",
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def _total_size(response: dict[str, Any]) -> int:
    """The whole object's size: from Content-Range ("bytes 0-9/1234") for a ranged GET."""
    content_range = response.get("ContentRange")
    if content_range:
        return int(str(content_range).rpartition("/")[2])
    return int(response["ContentLength"])


def _is_key(key: str) -> bool:
    try:
        validate_key(key)
    except MegaCityError:
        return False
    return True


def _empty(info: ObjectInfo, offset: int) -> ObjectReader:
    return ObjectReader(info, io.BytesIO(), offset=min(offset, info.size), length=0)


class _Body:
    """A botocore StreamingBody whose read errors become domain errors too."""

    def __init__(self, body: Any, key: str) -> None:
        self._body = body
        self._key = key

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._body.read(None if size < 0 else size)
        except (BotoCoreError, OSError) as exc:
            raise ServiceUnavailable(
                f"reading object {self._key!r} from the object store failed: {type(exc).__name__}",
                code="storage_unavailable",
            ) from exc
        return data

    def close(self) -> None:
        self._body.close()

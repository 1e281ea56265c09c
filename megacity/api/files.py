"""GET /api/v1/files/{key}: objects of the local store, behind signed, expiring URLs.

The signature is checked before anything else, so a caller without a valid URL learns
nothing about which keys exist. Objects are streamed (Range supported, for video
seeking), with headers that keep a stored file from acting as a page of this origin:
nosniff, a sandboxing CSP, and `attachment` for any type that is not plain media.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from megacity.api.schemas import ERROR_RESPONSES
from megacity.errors import Forbidden, MegaCityError
from megacity.storage import ObjectInfo, ObjectReader, ObjectStore, validate_key
from megacity.storage.signing import URLSigner

router = APIRouter(tags=["files"])

# Shown inline by a browser; anything else (HTML, SVG, scripts, unknown) downloads.
_INLINE = re.compile(r"(audio|video)/[a-z0-9.+-]+|image/(png|jpeg|gif|webp|avif)|text/plain")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(MegaCityError):
    status = 416
    type = "invalid_request_error"
    code = "range_not_satisfiable"


@router.get(
    "/api/v1/files/{key:path}",
    responses={**ERROR_RESPONSES, 206: {"description": "a byte range of the object"}},
    summary="Download a stored object through a signed URL",
    response_class=Response,
)
async def download(
    request: Request,
    key: str,
    expires: str | None = Query(default=None, description="Unix seconds the URL expires at"),
    signature: str | None = Query(default=None, description="base64url HMAC-SHA256"),
) -> Response:
    store: ObjectStore = request.app.state.services.storage
    signer: URLSigner | None = getattr(store, "signer", None)
    if signer is None:
        raise Forbidden("this store does not serve signed URLs here", code="invalid_signature")
    until = signer.verify(key, expires, signature)
    validate_key(key)
    info = await run_in_threadpool(store.stat, key)
    headers = _headers(key, info, until)
    if _etag(info) in _if_none_match(request):
        return Response(status_code=304, headers=headers)
    span = _range(request.headers.get("range"), info.size, request.headers.get("if-range"), info)
    if span is None:
        reader = await run_in_threadpool(store.open, key)
        status = 200
    else:
        offset, length = span
        reader = await run_in_threadpool(store.open, key, offset, length)
        status = 206
        last = reader.offset + reader.length - 1
        headers["Content-Range"] = f"bytes {reader.offset}-{last}/{reader.info.size}"
    headers["Content-Length"] = str(reader.length)
    return StreamingResponse(_chunks(reader), status, headers, media_type=reader.info.content_type)


def _chunks(reader: ObjectReader) -> Iterator[bytes]:
    # A sync iterator: Starlette reads it in a worker thread; closed however the send ends.
    try:
        yield from reader
    finally:
        reader.close()


def _headers(key: str, info: ObjectInfo, until: int) -> dict[str, str]:
    filename = key.rpartition("/")[2]  # the key charset needs no quoting in a header
    inline = _INLINE.fullmatch(info.content_type.partition(";")[0].strip()) is not None
    max_age = max(0, until - int(time.time()))
    return {
        "Cache-Control": f"private, max-age={max_age}",
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{filename}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Accept-Ranges": "bytes",
        "ETag": _etag(info),
    }


def _etag(info: ObjectInfo) -> str:
    return f'"{info.sha256}"'


def _if_none_match(request: Request) -> set[str]:
    value = request.headers.get("if-none-match", "")
    return {tag.strip().removeprefix("W/") for tag in value.split(",") if tag.strip()}


def _range(
    header: str | None, size: int, if_range: str | None, info: ObjectInfo
) -> tuple[int, int] | None:
    """(offset, length) of a single-range request; None for the whole object."""
    if header is None or (if_range is not None and if_range.strip() != _etag(info)):
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # multiple ranges or another unit: answer with the whole object
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = min(int(last), size)  # the final `last` bytes
        start = size - length
        if length == 0:
            raise _unsatisfiable(size)
        return start, length
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or end < start:
        raise _unsatisfiable(size)
    return start, end - start + 1


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        "the requested range is outside the object",
        headers={"Content-Range": f"bytes */{size}"},
    )

"""What media handling shares: how a too-long or too-large file is refused, and FFmpeg's reasons."""

from __future__ import annotations

import base64
import binascii

from megacity.errors import BadRequest, PayloadTooLarge, UnprocessableEntity


def too_long(what: str, seconds: float, max_seconds: float) -> UnprocessableEntity:
    """422 `{what}_too_long` for a file over the duration limit."""
    return UnprocessableEntity(
        f"the {what} is longer than the {max_seconds:g} s limit ({seconds:.1f} s or more)",
        code=f"{what}_too_long",
        param="file",
    )


def media_too_large(limit: int, param: str) -> PayloadTooLarge:
    """413 `media_too_large` for a part or a fetched body over `limit` bytes."""
    return PayloadTooLarge(
        f"the media is over the {limit / 1024 / 1024:g} MB limit",
        code="media_too_large",
        param=param,
    )


def decode_base64(text: str, *, max_bytes: int, param: str, code: str) -> bytes:
    """Base64 media, refused (413) above `max_bytes` before decoding, 400 `code` if invalid."""
    if len(text.rstrip("=")) * 3 // 4 > max_bytes:
        raise media_too_large(max_bytes, param)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("the media is not valid base64", code=code, param=param) from None


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's short reason (no file names or paths), for an error message."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":", 1)[0][:200]

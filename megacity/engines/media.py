"""What media handling shares: how a too-long or too-large file is refused, and FFmpeg's reasons."""

from __future__ import annotations

from megacity.errors import PayloadTooLarge, UnprocessableEntity


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


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's short reason (no file names or paths), for an error message."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":", 1)[0][:200]

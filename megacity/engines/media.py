"""What audio and video decoding share: how a refusal of a too-long file and FFmpeg's reasons read."""

from __future__ import annotations

from megacity.errors import UnprocessableEntity


def too_long(what: str, seconds: float, max_seconds: float) -> UnprocessableEntity:
    """422 `{what}_too_long` for a file over the duration limit."""
    return UnprocessableEntity(
        f"the {what} is longer than the {max_seconds:g} s limit ({seconds:.1f} s or more)",
        code=f"{what}_too_long",
        param="file",
    )


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's short reason (no file names or paths), for an error message."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":", 1)[0][:200]

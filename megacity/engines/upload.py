"""An uploaded media file as the engines receive it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MediaUpload:
    """An uploaded file, held in memory; `filename` is only a label sent on, never a path."""

    data: bytes
    filename: str = "upload"
    content_type: str = "application/octet-stream"

"""Safety layer: watermarks, PII masking, prompt firewall, moderation, limits, abuse, bias.

Each concern is its own module (``pii``, ``firewall``, ``moderation``, ``ratelimit``,
``abuse``, ``identity``, ``bias``, ``watermark``). The watermark names below are
imported on first use: they pull in numpy/scipy/PyAV, which the rest does not need.
"""

from __future__ import annotations

from typing import Any

_WATERMARK = (
    "DEFAULT_WATERMARK_KEY",
    "WatermarkCheck",
    "verify_audio",
    "verify_file",
    "verify_image",
    "watermark_audio",
    "watermark_image",
)
__all__ = list(_WATERMARK)


def __getattr__(name: str) -> Any:
    if name in _WATERMARK:
        from megacity.safety import watermark

        return getattr(watermark, name)
    raise AttributeError(f"module 'megacity.safety' has no attribute {name!r}")

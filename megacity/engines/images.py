"""Images from outside (uploads, URL and data-URL parts), checked and re-encoded with Pillow.

What a client sends is never passed on as it came:

* the content is sniffed by Pillow (the declared type and file name mean nothing): only
  JPEG, PNG, WebP, GIF (first frame) and BMP are accepted, anything else is 415;
* the header's size is checked before any pixel is decoded (a 100-megapixel
  decompression bomb is refused, 413) and the picture is scaled down to `max_pixels`;
* the EXIF orientation is applied, then every piece of metadata is dropped — EXIF
  (GPS: learners' phone photos carry where they live), XMP, ICC, PNG text chunks —
  because the image is re-encoded from its pixels alone: JPEG for photos, PNG where the
  source was lossless (screenshots of homework stay sharp).

Pillow is imported here, inside the functions: the router's start-up never loads it.
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from megacity.engines.media import decode_base64
from megacity.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "MPO"})
_LOSSLESS = frozenset({"PNG", "GIF", "BMP"})
HARD_MAX_PIXELS = 100_000_000  # refused outright above this (decompression bombs)
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[\w.+-]+)*)(;base64)?,", re.I)


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """A re-encoded image: its bytes, MIME type and size in pixels (after scaling)."""

    data: bytes
    mime: str
    width: int
    height: int

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def decode_data_url(url: str, *, max_bytes: int, param: str) -> tuple[str, bytes]:
    """A ``data:`` URL's MIME type and bytes (base64 only), refused above `max_bytes`."""
    match = _DATA_URL.match(url)
    if match is None or not match.group(3):
        raise BadRequest(
            "a data URL must be data:<type>;base64,<data>", code="url_invalid", param=param
        )
    data = decode_base64(url[match.end() :], max_bytes=max_bytes, param=param, code="url_invalid")
    return (match.group(1) or "application/octet-stream").lower(), data


def prepare_image(
    data: bytes, *, max_pixels: int, param: str = "image", quality: int = 90
) -> PreparedImage:
    """Sniff, check, orient, scale to `max_pixels` and re-encode without metadata."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise BadRequest("the image is empty", code="empty_image", param=param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                if fmt not in ACCEPTED_FORMATS:
                    raise _unsupported(f"{fmt or 'this'} images are not accepted", param)
                if img.width * img.height > HARD_MAX_PIXELS:
                    raise _too_many_pixels(f"{img.width}×{img.height}", param)
                img.seek(0)  # an animation: its first frame
                picture = ImageOps.exif_transpose(img)  # as a phone shows it, then no EXIF
                picture.load()
    except Image.DecompressionBombError:
        raise _too_many_pixels("over 178 megapixels", param) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _unsupported("the data is not a readable image", param) from None
    picture = _scaled(_plain(picture), max_pixels)
    lossless = fmt in _LOSSLESS
    out = io.BytesIO()
    if lossless:
        picture.save(out, "PNG", optimize=False, compress_level=6)
    else:
        picture.convert("RGB").save(out, "JPEG", quality=quality, optimize=True)
    return PreparedImage(
        out.getvalue(), "image/png" if lossless else "image/jpeg", picture.width, picture.height
    )


def decode_rgb(data: bytes, *, max_pixels: int, param: str = "image") -> Any:
    """A photo's pixels as an RGB ``uint8`` array: checked, oriented and scaled as above."""
    import numpy as np
    from PIL import Image

    prepared = prepare_image(data, max_pixels=max_pixels, param=param)
    with Image.open(io.BytesIO(prepared.data)) as img:
        return np.asarray(img.convert("RGB"))


def encode_rgb(rgb: Any, *, max_pixels: int, quality: int = 85) -> PreparedImage:
    """An RGB ``uint8`` array (a video frame) as a JPEG of at most `max_pixels`."""
    from PIL import Image

    picture = _scaled(Image.fromarray(rgb, "RGB"), max_pixels)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=quality, optimize=True)
    return PreparedImage(out.getvalue(), "image/jpeg", picture.width, picture.height)


def _plain(img: Any) -> Any:
    """Pixels only, in RGB or RGBA (palette, CMYK, 16-bit … converted)."""
    from PIL import Image

    if img.mode in ("RGB", "RGBA"):
        plain = Image.new(img.mode, img.size)
    else:
        has_alpha = "A" in img.getbands() or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        plain = Image.new(img.mode, img.size)
    plain.paste(img)  # a new image: no info dict, no EXIF, no ICC, no text chunks
    return plain


def _scaled(img: Any, max_pixels: int) -> Any:
    from PIL import Image

    pixels = img.width * img.height
    if pixels <= max_pixels:
        return img
    scale = (max_pixels / pixels) ** 0.5
    size = (max(1, int(img.width * scale)), max(1, int(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _too_many_pixels(size: str, param: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the image is {size} pixels; at most {HARD_MAX_PIXELS // 1_000_000} megapixels are"
        " accepted",
        code="image_too_large",
        param=param,
    )


def _unsupported(detail: str, param: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"{detail} (JPEG, PNG, WebP, GIF or BMP)", code="unsupported_image", param=param
    )


__all__ = [
    "ACCEPTED_FORMATS",
    "PreparedImage",
    "decode_data_url",
    "decode_rgb",
    "encode_rgb",
    "prepare_image",
]

"""What the Dance Lab pictures share: fonts, fitting text to a width, PNG bytes.

Text uses Pillow's built-in scalable font, so no font file is needed; Korean words are
added only where a Hangul font is installed (``has_hangul_font``). PNGs carry no time
stamp, so the same input on the same machine gives the same bytes.
"""

from __future__ import annotations

import functools
import io
import os

from PIL import Image, ImageFont
from PIL.PngImagePlugin import PngInfo

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

# Well-known places of fonts with Hangul (Debian/Ubuntu, Fedora, Arch, macOS, Windows).
HANGUL_FONT_PATHS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf",
    "/System/Library/Fonts/AppleSDGothicNeo.ttc",
    "C:/Windows/Fonts/malgun.ttf",
)


@functools.cache
def _hangul_font_path() -> str | None:
    for path in HANGUL_FONT_PATHS:
        if os.path.isfile(path):
            try:
                ImageFont.truetype(path, 12)
            except OSError:
                continue
            return path
    return None


def has_hangul_font() -> bool:
    """Whether Korean text can be drawn (a Hangul font is installed); English is always drawn."""
    return _hangul_font_path() is not None


@functools.cache
def load_font(size: int, hangul: bool = False) -> Font:
    path = _hangul_font_path() if hangul else None
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def _has_hangul(text: str) -> bool:
    return any("\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\ud7af" for ch in text)


def text_font(text: str, size: int) -> Font:
    return load_font(size, hangul=_has_hangul(text))


def bilingual(en: str, ko: str) -> str:
    return f"{en}  {ko}" if has_hangul_font() else en


def fit(text: str, font: Font, width: float) -> str:
    """``text`` cut with "..." to fit ``width`` px."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text.rstrip() + "..."


def png_bytes(image: Image.Image, description: str) -> bytes:
    info = PngInfo()
    info.add_text("Software", "megacity")
    info.add_text("Description", description)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info, compress_level=6)
    return buf.getvalue()


__all__ = [
    "HANGUL_FONT_PATHS",
    "RGB",
    "Font",
    "bilingual",
    "fit",
    "has_hangul_font",
    "load_font",
    "png_bytes",
    "text_font",
]

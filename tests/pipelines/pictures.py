"""Reading the PNGs the picture tests make: decode, and one pixel's colour."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def pixel(image: Image.Image, xy: tuple[float, float] | np.ndarray) -> tuple[int, ...]:
    x, y = (int(v) for v in np.round(np.asarray(xy, dtype=float)))
    return tuple(int(c) for c in np.asarray(image)[y, x])

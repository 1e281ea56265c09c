"""Images from outside: sniffed, checked, oriented, scaled and re-encoded without metadata."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from megacity.engines.images import decode_data_url, decode_rgb, encode_rgb, prepare_image
from megacity.errors import MegaCityError
from tests.video import TEXT, astronaut, jpeg_with_gps, png_image


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_gps_and_every_exif_field_are_stripped_and_the_orientation_applied() -> None:
    source = jpeg_with_gps(np.ascontiguousarray(astronaut()[:, :400]))  # 400 wide, 512 high
    assert _open(source).getexif().get_ifd(0x8825)  # the source does carry GPS
    out = prepare_image(source, max_pixels=10_000_000)
    image = _open(out.data)
    assert out.mime == "image/jpeg" and image.format == "JPEG"
    assert not image.getexif()  # no EXIF at all: no GPS, no orientation, no camera
    assert "exif" not in image.info and "icc_profile" not in image.info
    assert (out.width, out.height) == (512, 400)  # orientation 6: turned as a phone shows it


def test_png_text_chunks_are_dropped_and_lossless_sources_stay_png() -> None:
    from PIL.PngImagePlugin import PngInfo

    meta = PngInfo()
    meta.add_text("Comment", "home address: 서울시 강남구 …")
    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, "PNG", pnginfo=meta)
    out = prepare_image(buf.getvalue(), max_pixels=10_000_000)
    image = _open(out.data)
    assert out.mime == "image/png" and not image.text


def test_large_pictures_are_scaled_down_to_max_pixels() -> None:
    out = prepare_image(png_image(), max_pixels=100_000)
    assert out.width * out.height <= 100_000
    assert abs(out.width / out.height - 1.0) < 0.01  # the aspect ratio is kept


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (TEXT, 415, "unsupported_image"),
        (b"<html><body>hi</body></html>", 415, "unsupported_image"),
        (png_image()[:200], 415, "unsupported_image"),  # a truncated file
        (b"", 400, "empty_image"),
    ],
)
def test_what_is_not_an_image_is_refused(data: bytes, status: int, code: str) -> None:
    with pytest.raises(MegaCityError) as info:
        prepare_image(data, max_pixels=1_000_000, param="messages.0.content.1")
    assert (info.value.status, info.value.code) == (status, code)
    assert info.value.param == "messages.0.content.1"


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    buf = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buf, "PNG")  # 144 megapixels, a few kB
    with pytest.raises(MegaCityError) as info:
        prepare_image(buf.getvalue(), max_pixels=1_000_000)
    assert (info.value.status, info.value.code) == (413, "image_too_large")


def test_formats_outside_the_list_are_refused() -> None:
    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, "TIFF")
    with pytest.raises(MegaCityError) as info:
        prepare_image(buf.getvalue(), max_pixels=1_000_000)
    assert info.value.code == "unsupported_image"


def test_data_urls() -> None:
    png = png_image()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    assert decode_data_url(url, max_bytes=len(png), param="p") == ("image/png", png)
    for bad in ("data:image/png,rawtext", "data:image/png;base64,@@@", "http://x"):
        with pytest.raises(MegaCityError) as info:
            decode_data_url(bad, max_bytes=10_000, param="p")
        assert info.value.code == "url_invalid"
    with pytest.raises(MegaCityError) as info:
        decode_data_url(url, max_bytes=1000, param="p")
    assert (info.value.status, info.value.code) == (413, "media_too_large")


def test_frames_and_photos_as_arrays() -> None:
    rgb = decode_rgb(jpeg_with_gps(), max_pixels=10_000_000)
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    jpeg = encode_rgb(rgb, max_pixels=50_000)
    assert jpeg.mime == "image/jpeg" and jpeg.width * jpeg.height <= 50_000
    assert jpeg.data_url().startswith("data:image/jpeg;base64,")

"""The image watermark: survives a PNG round-trip, absent elsewhere, keyed, clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from megacity.safety.image_watermark import IPTC_TRAINED_ALGORITHMIC_MEDIA, PRESENT_THRESHOLD
from megacity.safety.watermark import DEFAULT_WATERMARK_KEY, verify_image, watermark_image


def _astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut()).resize((512, 512))


def _gradient() -> Image.Image:
    y, x = np.mgrid[0:512, 0:512]
    return Image.fromarray(np.stack([x / 2, y / 2, (x + y) / 4], -1).astype(np.uint8))


def _noise() -> Image.Image:
    pixels = np.random.default_rng(7).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


PICTURES = {"astronaut": _astronaut, "gradient": _gradient, "noise": _noise}
OTHERS = {  # never watermarked: photographs of several kinds and sizes
    "coffee": lambda: Image.fromarray(data.coffee()),
    "chelsea": lambda: Image.fromarray(data.chelsea()),
    "rocket": lambda: Image.fromarray(data.rocket()),
    "camera": lambda: Image.fromarray(data.camera()),  # greyscale (mode L)
    "flat": lambda: Image.new("RGB", (300, 300), (120, 130, 140)),
}


@pytest.fixture(scope="module")
def marked() -> dict[str, bytes]:
    meta = {"model": "sdxl-turbo", "seed": "42", "job_id": "j-1"}
    return {name: watermark_image(make(), metadata=meta) for name, make in PICTURES.items()}


def _resave(png: bytes, **save: object) -> bytes:
    buf = io.BytesIO()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.save(buf, **save)  # type: ignore[arg-type]
    return buf.getvalue()


@pytest.mark.parametrize("name", list(PICTURES))
def test_mark_and_metadata_survive_png_round_trip(marked: dict[str, bytes], name: str) -> None:
    check = verify_image(marked[name])
    assert check.present and check.score >= PRESENT_THRESHOLD
    assert check.method == "dwtDct"
    assert check.metadata["ai_generated"] == "true"
    assert check.metadata["DigitalSourceType"] == IPTC_TRAINED_ALGORITHMIC_MEDIA
    assert check.metadata["model"] == "sdxl-turbo" and check.metadata["job_id"] == "j-1"
    original = np.asarray(PICTURES[name]().convert("RGB"), dtype=np.float64)
    error = np.asarray(Image.open(io.BytesIO(marked[name])), dtype=np.float64) - original
    assert 10 * np.log10(255**2 / np.mean(error**2)) > 35  # PSNR in dB: invisible


@pytest.mark.parametrize("name", list(PICTURES))
def test_plain_resave_strips_metadata_but_not_the_mark(marked: dict[str, bytes], name: str) -> None:
    check = verify_image(_resave(marked[name], format="PNG"))
    assert check.present
    assert "ai_generated" not in check.metadata


@pytest.mark.parametrize("name", list(PICTURES))
def test_unmarked_picture_does_not_verify(name: str) -> None:
    check = verify_image(PICTURES[name]())
    assert not check.present and check.score < 0.75
    assert check.metadata == {}


@pytest.mark.parametrize("name", list(OTHERS))
def test_other_pictures_do_not_verify(name: str) -> None:
    assert verify_image(OTHERS[name]()).score < 0.75


def test_other_key_neither_verifies_nor_is_verified(marked: dict[str, bytes]) -> None:
    assert verify_image(marked["astronaut"], key="operator-secret").score < 0.75
    own = watermark_image(_gradient(), key="operator-secret")
    assert verify_image(own, key="operator-secret").present
    assert not verify_image(own, key=DEFAULT_WATERMARK_KEY).present


def test_rgba_and_greyscale_are_marked() -> None:
    rgba = _astronaut().convert("RGBA")
    assert verify_image(watermark_image(rgba)).present
    grey = _astronaut().convert("L")
    assert verify_image(watermark_image(grey)).present


def test_metadata_is_sanitised_and_cannot_unlabel() -> None:
    meta = {"prompt": "a cat\x00\x1b[31m" + "x" * 5000, "ai_generated": "false", "세": "1"}
    with pytest.raises(ValueError, match="PNG keyword"):
        watermark_image(_gradient(), metadata=meta)
    del meta["세"]
    found = verify_image(watermark_image(_gradient(), metadata=meta)).metadata
    assert found["ai_generated"] == "true"
    assert found["prompt"].startswith("a cat[31m") and len(found["prompt"]) == 1024


def test_too_small_image_is_refused() -> None:
    with pytest.raises(ValueError, match="256×256"):
        watermark_image(Image.new("RGB", (255, 256)))
    with pytest.raises(ValueError, match="256×256"):
        verify_image(Image.new("RGB", (128, 128)))


@pytest.mark.parametrize("junk", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_corrupt_bytes_are_refused(junk: bytes) -> None:
    with pytest.raises(ValueError, match="not a readable image"):
        verify_image(junk)


def test_truncated_png_is_refused(marked: dict[str, bytes]) -> None:
    with pytest.raises(ValueError, match="not a readable image"):
        verify_image(marked["astronaut"][:2000])


def test_report_lossy_survival(marked: dict[str, bytes]) -> None:
    """Not a guarantee: prints whether JPEG q90 and a 0.5× resize keep the mark."""
    for name, png in marked.items():
        jpeg = verify_image(_resave(png, format="JPEG", quality=90)).score
        half = Image.open(io.BytesIO(png)).resize((256, 256))
        print(
            f"{name}: JPEG q90 bit accuracy {jpeg:.2f}; 0.5× resize {verify_image(half).score:.2f}"
        )

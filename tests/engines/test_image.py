"""The in-process image engine with the real diffusers loading code (tiny random-weight model).

Random weights make the pictures noise: these tests check sizes, determinism, limits,
loading, progress and concurrency, never what was drawn.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from megacity.engines.image import (
    GeneratedImages,
    ImageEngine,
    ImageEngineConfig,
    ImageRequest,
    ModelUnavailable,
)
from megacity.errors import BadRequest, UnprocessableEntity
from tests.image_models import tiny_sd

pytest.importorskip("diffusers")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sd(tmp_path_factory.mktemp("image-models") / "tiny-sd")


def _config(model: Path, **options: object) -> ImageEngineConfig:
    return ImageEngineConfig.from_options({"model": str(model), "device": "cpu", **options})


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Iterator[ImageEngine]:
    e = ImageEngine(_config(tiny_model, default_steps=2, max_steps=8, min_size=64))
    yield e
    e.close()


def _gen(
    engine: ImageEngine, prompt: str = "a red bus in Seoul", **fields: object
) -> GeneratedImages:
    return asyncio.run(engine.generate(ImageRequest(prompt, **fields)))  # type: ignore[arg-type]


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_loads_once_through_from_pretrained(tiny_model: Path) -> None:
    fresh = ImageEngine(_config(tiny_model))
    assert not fresh.loaded and fresh.failure is None
    pipe = fresh.load()
    assert type(pipe).__name__ == "StableDiffusionPipeline"  # what AutoPipeline picked
    assert fresh.loaded and fresh.load() is pipe
    assert fresh.load_seconds is not None and fresh.load_seconds < 20
    fresh.close()


def test_generates_rgb_images_of_the_asked_size(engine: ImageEngine) -> None:
    out = _gen(engine, width=256, height=256, seed=7)
    (image,) = out.images
    assert image.mode == "RGB" and image.size == (256, 256)
    assert _pixels(image).std() > 1  # not one flat colour
    assert (out.seeds, out.steps, out.width, out.height) == ((7,), 2, 256, 256)
    assert out.model.endswith("tiny-sd") and out.seconds > 0

    wide = _gen(engine, width=128, height=64, seed=7, n=2)
    assert [im.size for im in wide.images] == [(128, 64), (128, 64)]
    assert wide.seeds == (7, 8)


def test_same_seed_same_pixels_and_each_batch_image_reproducible_alone(engine: ImageEngine) -> None:
    first = _gen(engine, width=64, height=64, seed=42, n=2)
    again = _gen(engine, width=64, height=64, seed=42, n=2)
    for a, b in zip(first.images, again.images, strict=True):
        assert np.array_equal(_pixels(a), _pixels(b))
    assert not np.array_equal(_pixels(first.images[0]), _pixels(first.images[1]))
    alone = _gen(engine, width=64, height=64, seed=43)
    # batched and single convolutions may round differently in the last bit
    assert np.abs(_pixels(alone.images[0]) - _pixels(first.images[1])).max() <= 2
    other = _gen(engine, width=64, height=64, seed=44)
    assert np.abs(_pixels(other.images[0]) - _pixels(alone.images[0])).mean() > 5


def test_random_seed_is_reported_and_reproduces(engine: ImageEngine) -> None:
    out = _gen(engine, width=64, height=64)
    (seed,) = out.seeds
    assert isinstance(seed, int) and seed >= 0
    again = _gen(engine, width=64, height=64, seed=seed)
    assert np.array_equal(_pixels(out.images[0]), _pixels(again.images[0]))


def test_progress_rises_to_one(engine: ImageEngine) -> None:
    seen: list[float] = []
    threads: set[str] = set()

    def progress(fraction: float) -> None:
        seen.append(fraction)
        threads.add(threading.current_thread().name)

    request = ImageRequest("progress", width=64, height=64, steps=4, seed=1)
    out = asyncio.run(engine.generate(request, progress=progress))
    assert out.steps == 4
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 4
    assert threads and all(name.startswith("image-") for name in threads)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"width": 250}, "invalid_size"),  # not a multiple of 8
        ({"width": 32, "height": 32}, "invalid_size"),  # below min_size
        ({"height": 2048}, "invalid_size"),  # above max_size
        ({"steps": 9}, "too_many_steps"),
        ({"steps": 0}, "invalid_steps"),
        ({"n": 5}, "too_many_images"),
        ({"n": 0}, "invalid_n"),
        ({"seed": -1}, "invalid_seed"),
        ({"guidance_scale": -1.0}, "invalid_guidance_scale"),
        ({"prompt": "   "}, "empty_prompt"),
        ({"prompt": "x" * 2001}, "prompt_too_long"),
        ({"negative_prompt": "y" * 2001}, "prompt_too_long"),
    ],
)
def test_bad_requests_get_4xx_codes(
    engine: ImageEngine, fields: dict[str, object], code: str
) -> None:
    request = ImageRequest(**{"prompt": "ok", "width": 64, "height": 64, **fields})  # type: ignore[arg-type]
    with pytest.raises(BadRequest) as caught:
        engine.check(request)
    assert caught.value.code == code and caught.value.status == 400
    with pytest.raises(BadRequest):
        asyncio.run(engine.generate(request))


def test_check_fills_defaults(engine: ImageEngine) -> None:
    checked = engine.check(ImageRequest("  a cat  ", width=64, height=64))
    assert checked.prompt == "a cat" and checked.steps == 2 and checked.seed is not None


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"modle": "x"}, "modle"),
        ({"device": "tpu"}, "device"),
        ({"dtype": "int8"}, "dtype"),
        ({"max_steps": 0}, "max_steps"),
        ({"default_steps": 9, "max_steps": 8}, "default_steps"),
        ({"min_size": 512, "max_size": 256}, "min_size"),
        ({"max_images": "4"}, "max_images"),
        ({"guidance_scale": -1}, "guidance_scale"),
        ({"model": ""}, "model"),
    ],
)
def test_config_refuses_bad_options(options: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        ImageEngineConfig.from_options(options)


def test_missing_folder_is_model_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    e = ImageEngine(_config(missing))
    with pytest.raises(ModelUnavailable) as caught:
        asyncio.run(e.generate(ImageRequest("a cat", width=256, height=256)))
    assert caught.value.status == 503
    assert (
        "MEGACITY_IMAGE_MODEL" in caught.value.message and "options.model" in caught.value.message
    )
    assert not e.loaded and e.failure is not None and "no diffusers folder" in e.failure
    asyncio.run(e.warm_up())  # logged, not raised
    e.close()


def test_concurrency_is_bounded(tiny_model: Path) -> None:
    e = ImageEngine(_config(tiny_model, default_steps=2, min_size=64, max_concurrency=1))
    most = {"running": 0, "waiting": 0}

    def progress(_: float) -> None:
        most["running"] = max(most["running"], e.running)
        most["waiting"] = max(most["waiting"], e.waiting)

    async def three() -> list[GeneratedImages]:
        requests = [ImageRequest(f"p{i}", width=64, height=64, seed=i) for i in range(3)]
        return list(await asyncio.gather(*(e.generate(r, progress=progress) for r in requests)))

    results = asyncio.run(three())
    assert [r.seeds for r in results] == [(0,), (1,), (2,)]
    assert most["running"] == 1 and most["waiting"] >= 1
    assert e.running == 0 and e.waiting == 0
    e.close()


def _brighter_than(level: int) -> Callable[[Image.Image], bool]:
    """A real (if simple) checker: refuses images whose brightest pixel is at most `level`."""

    def check(image: Image.Image) -> bool:
        return int(np.asarray(image.convert("L")).max()) > level

    return check


def test_checker_seam_rejects_unsafe_images(tiny_model: Path) -> None:
    no_black = _brighter_than(0)
    assert not no_black(Image.new("RGB", (256, 256)))  # an all-black picture is refused
    request = ImageRequest("cat", width=64, height=64, steps=1, seed=3)
    ok = ImageEngine(_config(tiny_model, min_size=64), checker=no_black)
    assert len(asyncio.run(ok.generate(request)).images) == 1
    ok.close()
    strict = ImageEngine(_config(tiny_model, min_size=64), checker=_brighter_than(255))
    with pytest.raises(UnprocessableEntity) as caught:
        asyncio.run(strict.generate(request))
    assert caught.value.code == "unsafe_content" and caught.value.status == 422
    strict.close()


def test_parallel_generations_match_serial_ones(tiny_model: Path, engine: ImageEngine) -> None:
    # Each call gets its own scheduler and pipeline state, so two at once do not mix steps.
    e = ImageEngine(_config(tiny_model, default_steps=3, min_size=64, max_concurrency=2))
    requests = [ImageRequest(f"p{i}", width=64, height=64, steps=3, seed=i) for i in (5, 6)]

    async def both() -> list[GeneratedImages]:
        return list(await asyncio.gather(*(e.generate(r) for r in requests)))

    together = asyncio.run(both())
    for request, result in zip(requests, together, strict=True):
        alone = asyncio.run(engine.generate(request))
        # Mixed-up steps would change the picture; torch's CPU kernels may round a pixel
        # level differently when another generation competes for the cores.
        diff = np.abs(_pixels(result.images[0]).astype(int) - _pixels(alone.images[0]))
        assert diff.max() <= 2
    e.close()

"""The in-process image engine: a diffusers text-to-image pipeline, loaded once, bounded.

Thumbnails and illustrations for the zones come from a few-step model (sdxl-turbo by
default). The pipeline is loaded on first use (or at start with ``warmup``) in a
worker thread, so the router starts at once; generations run on ``max_concurrency``
threads and everything beyond that waits in line, because one request already fills
a GPU. Each image gets its own seeded generator (``seed + i``), so any one of a batch
can be made again alone. torch and diffusers are imported only when the model loads:
they are an optional extra, and the router runs without them.
"""

from __future__ import annotations

import copy
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from PIL import Image

from megacity.engines.errors import ModelUnavailable
from megacity.engines.loading import FAILED_LOAD_RETRY_S, SlotEngine
from megacity.errors import BadRequest, UnprocessableEntity, UpstreamError

log = logging.getLogger("megacity.image")

_MAX_PROMPT_CHARS = 2000
_MAX_SEED = 2**63 - 1
_DTYPES = ("auto", "float32", "float16", "bfloat16")
_POSITIVE = ("default_steps", "max_steps", "min_size", "max_size", "max_images", "max_concurrency")

Checker = Callable[[Image.Image], bool]  # True: the image may be returned
Progress = Callable[[float], None]  # fraction of denoising steps done, 0..1


@dataclass(frozen=True, slots=True)
class ImageEngineConfig:
    """An image node's `options`: model (local diffusers folder or hub name) and limits."""

    model: str = "stabilityai/sdxl-turbo"
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto: float16 on CUDA, float32 on CPU
    default_steps: int = 4
    max_steps: int = 50
    guidance_scale: float | None = None  # None: the pipeline's default (sdxl-turbo wants 0.0)
    min_size: int = 256  # pixels; the watermark needs at least 256×256
    max_size: int = 1024
    max_images: int = 4  # per request
    max_concurrency: int = 1  # generations that run at once
    warmup: bool = False  # load the model at start (in the background) instead of on first use

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ImageEngineConfig:
        """Validate a node's `options` mapping; ValueError names an unknown or bad key."""
        known = {f.name for f in fields(cls)}
        for key in options:
            if key not in known:
                raise ValueError(f"image engine: unknown option {key!r}")
        config = cls(**options)
        if not isinstance(config.model, str) or not config.model:
            raise ValueError("image engine: model must be a local folder or a model name")
        if config.device not in ("auto", "cpu", "cuda"):
            raise ValueError(
                f"image engine: device must be auto, cpu or cuda, not {config.device!r}"
            )
        if config.dtype not in _DTYPES:
            raise ValueError(f"image engine: dtype must be one of {', '.join(_DTYPES)}")
        for name in _POSITIVE:
            value = getattr(config, name)
            if not _int(value) or value < 1:
                raise ValueError(f"image engine: {name} must be a positive integer")
        if config.default_steps > config.max_steps:
            raise ValueError("image engine: default_steps must not exceed max_steps")
        if config.min_size > config.max_size:
            raise ValueError("image engine: min_size must not exceed max_size")
        if config.guidance_scale is not None and not _scale(config.guidance_scale):
            raise ValueError("image engine: guidance_scale must be a number >= 0 (or null)")
        if not isinstance(config.warmup, bool):
            raise ValueError("image engine: warmup must be true or false")
        return config

    def resolved_model(self) -> str:
        """A local folder as an absolute path, anything else as the model name it is."""
        path = Path(self.model).expanduser()
        if path.exists():
            return str(path.resolve())
        if path.is_absolute() or self.model.startswith((".", "~")):
            raise FileNotFoundError(f"no diffusers folder at {path}")
        return self.model


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One text-to-image request; `check` fills steps and seed when they are None."""

    prompt: str
    negative_prompt: str | None = None
    width: int = 512
    height: int = 512
    steps: int | None = None  # None: the config's default_steps
    seed: int | None = None  # None: a random seed, reported back
    n: int = 1
    guidance_scale: float | None = None  # None: the config's, else the pipeline's default


@dataclass(frozen=True, slots=True)
class GeneratedImages:
    """RGB images with one seed each (seed, seed+1, ...); seconds spent in the pipeline."""

    images: tuple[Image.Image, ...]
    seeds: tuple[int, ...]
    model: str
    steps: int
    width: int
    height: int
    seconds: float


class ImageEngine(SlotEngine):
    """A diffusers pipeline in this process; `generate` is safe to call from many requests."""

    def __init__(
        self, config: ImageEngineConfig, name: str = "image", *, checker: Checker | None = None
    ) -> None:
        self.config = config
        self.name = name
        self.checker = checker  # the seam for an image safety checker; None: none runs here
        super().__init__("image", config.model, config.max_concurrency, f"image-{name}")
        self._device = "cpu"
        self._size_multiple = 8  # the VAE's scale factor once loaded (8 for Stable Diffusion)

    def check(self, request: ImageRequest) -> ImageRequest:
        """Validate a request against the limits; the copy has steps, seed and guidance filled in."""
        cfg, n = self.config, request.n
        prompt = request.prompt.strip() if isinstance(request.prompt, str) else ""
        if not prompt:
            raise _bad("empty_prompt", "prompt", "prompt must not be empty")
        for param, text in (("prompt", prompt), ("negative_prompt", request.negative_prompt)):
            if text is not None and len(text) > _MAX_PROMPT_CHARS:
                raise _bad("prompt_too_long", param, f"at most {_MAX_PROMPT_CHARS} characters")
        m = max(8, self._size_multiple)
        for value in (request.width, request.height):
            if not _int(value) or not cfg.min_size <= value <= cfg.max_size or value % m:
                raise _bad(
                    "invalid_size",
                    "size",
                    f"size {request.width}x{request.height} is not allowed: width and height"
                    f" must be multiples of {m} from {cfg.min_size} to {cfg.max_size}",
                )
        steps = cfg.default_steps if request.steps is None else request.steps
        if not _int(steps) or steps < 1:
            raise _bad("invalid_steps", "steps", "steps must be a positive integer")
        if steps > cfg.max_steps:
            raise _bad("too_many_steps", "steps", f"at most {cfg.max_steps} steps")
        if not _int(n) or n < 1:
            raise _bad("invalid_n", "n", "n must be a positive integer")
        if n > cfg.max_images:
            raise _bad("too_many_images", "n", f"at most {cfg.max_images} images per request")
        seed = secrets.randbelow(2**31) if request.seed is None else request.seed
        if not _int(seed) or not 0 <= seed <= _MAX_SEED - n:
            raise _bad("invalid_seed", "seed", "seed must be an integer from 0 to 2^63 - n")
        guidance = cfg.guidance_scale if request.guidance_scale is None else request.guidance_scale
        if guidance is not None and not _scale(guidance):
            raise _bad("invalid_guidance_scale", "guidance_scale", "must be a number >= 0")
        return replace(request, prompt=prompt, steps=steps, seed=seed, guidance_scale=guidance)

    def _build(self) -> Any:
        import torch
        from diffusers import AutoPipelineForText2Image

        cfg = self.config
        path = cfg.resolved_model()
        device = cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        name = cfg.dtype if cfg.dtype != "auto" else ("float16" if device == "cuda" else "float32")
        kwargs: dict[str, Any] = {_dtype_keyword(): getattr(torch, name)}
        if "safety_checker" in AutoPipelineForText2Image.load_config(path):
            # The router moderates prompts and (through `checker`) images itself.
            kwargs.update(safety_checker=None, requires_safety_checker=False)
            log.info("image model: its own safety checker is off; the router's moderation applies")
        pipe = AutoPipelineForText2Image.from_pretrained(path, **kwargs).to(device)
        pipe.set_progress_bar_config(disable=True)
        self._device = device
        self._size_multiple = int(getattr(pipe, "vae_scale_factor", 8) or 8)
        return pipe

    def _unavailable(self, detail: str) -> ModelUnavailable:
        return ModelUnavailable(
            f"image model {self.config.model!r} could not be loaded ({detail}). Set the node's"
            " options.model, or MEGACITY_IMAGE_MODEL, to a local diffusers folder (one with"
            " model_index.json) or to a model name this machine can download"
            " (e.g. stabilityai/sdxl-turbo); torch and diffusers must be installed.",
            retry_after_s=int(FAILED_LOAD_RETRY_S),
        )

    async def generate(
        self, request: ImageRequest, *, progress: Progress | None = None
    ) -> GeneratedImages:
        """Generate `n` images in a worker thread; `progress` is called from that thread."""
        request = self.check(request)  # bad input is refused before it waits in line
        # Checked again once loaded: the VAE may need a coarser size multiple than 8.
        return await self._in_line(lambda pipe: self._generate(pipe, self.check(request), progress))

    def _generate(
        self, shared: Any, request: ImageRequest, progress: Progress | None
    ) -> GeneratedImages:
        import torch

        assert request.steps is not None and request.seed is not None  # set by check()
        steps, seed, n = request.steps, request.seed, request.n
        # A pipeline keeps per-call state on itself and its scheduler: each call gets its own.
        pipe = copy.copy(shared)
        pipe.scheduler = copy.deepcopy(shared.scheduler)
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "width": request.width,
            "height": request.height,
            "num_inference_steps": steps,
            "num_images_per_prompt": n,
            "generator": [torch.Generator(self._device).manual_seed(seed + i) for i in range(n)],
            "output_type": "pil",
        }
        if request.guidance_scale is not None:
            kwargs["guidance_scale"] = float(request.guidance_scale)
        if progress is not None:
            kwargs["callback_on_step_end"] = _step_reporter(progress, steps)
        started = time.perf_counter()
        try:
            output = pipe(**kwargs)
        except Exception as exc:
            log.exception("image generation failed", extra={"model": self.config.model})
            raise UpstreamError(f"image generation failed ({type(exc).__name__}: {exc})") from exc
        images = tuple(im if im.mode == "RGB" else im.convert("RGB") for im in output.images)
        if self.checker is not None and not all(self.checker(im) for im in images):
            raise UnprocessableEntity(
                "the generated image was withheld by the image safety checker; change the prompt",
                code="unsafe_content",
                param="prompt",
            )
        return GeneratedImages(
            images=images,
            seeds=tuple(seed + i for i in range(n)),
            model=self.config.model,
            steps=steps,
            width=request.width,
            height=request.height,
            seconds=round(time.perf_counter() - started, 3),
        )

    def close(self) -> None:
        super().close()
        self._slot.clear()


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scale(value: object) -> bool:
    """A usable guidance scale: a finite number >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value < math.inf


def _bad(code: str, param: str, message: str) -> BadRequest:
    return BadRequest(message, code=code, param=param)


def _step_reporter(progress: Progress, steps: int) -> Callable[..., dict[str, Any]]:
    """A `callback_on_step_end` that reports a rising fraction of `steps`, ending at 1.0."""
    done = 0.0

    def on_step_end(
        pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        nonlocal done
        total = int(getattr(pipe, "num_timesteps", 0) or steps)
        fraction = min(1.0, (step + 1) / total)
        if fraction > done:
            done = fraction
            progress(fraction)
        return callback_kwargs

    return on_step_end


def _dtype_keyword() -> str:
    """diffusers 0.42 renamed from_pretrained's `torch_dtype` to `dtype`; older ones need the old."""
    import diffusers
    from packaging.version import Version

    return "dtype" if Version(diffusers.__version__).release >= (0, 42) else "torch_dtype"


__all__ = [
    "GeneratedImages",
    "ImageEngine",
    "ImageEngineConfig",
    "ImageRequest",
    "ModelUnavailable",
]

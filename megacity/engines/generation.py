"""What a generation engine hands out: watermarked PNGs, and watermarked speech in a format.

The engines (engines/image.py, engines/tts.py) make pixels and samples; this is the one
place that turns them into artefacts, so the in-process path of the router and a remote
image/TTS node (api/generation_node.py) cannot differ: every image carries the invisible
DWT-DCT mark and "AI generated" PNG metadata, every audio the spread-spectrum mark.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from megacity.config.settings import Settings
from megacity.engines.audio_encode import encode_audio
from megacity.engines.image import ImageEngine, ImageRequest
from megacity.engines.tts import TTSEngine
from megacity.safety.watermark import DEFAULT_WATERMARK_KEY, watermark_audio, watermark_image


def watermark_key(settings: Settings) -> str:
    """The key every artefact is watermarked with (settings, else the public default)."""
    key = settings.watermark_key
    return key.get_secret_value() if key is not None else DEFAULT_WATERMARK_KEY


@dataclass(frozen=True, slots=True)
class ImageOutput:
    """One generated image: PNG bytes (watermarked) and how to make it again."""

    png: bytes
    width: int
    height: int
    seed: int


@dataclass(frozen=True, slots=True)
class ImageBatch:
    """The images of one request, the model that made them and its steps."""

    images: tuple[ImageOutput, ...]
    model: str
    steps: int


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """Text to speak, and how."""

    text: str
    voice: str | None = None
    style: str = "neutral"
    speed: float = 1.0
    seed: int | None = None
    format: str = "wav"


@dataclass(frozen=True, slots=True)
class SpeechOutput:
    """Encoded, watermarked speech and what made it."""

    audio: bytes
    content_type: str
    format: str
    sample_rate: int
    duration_s: float
    engine: str  # "vits" or "espeak-ng"
    model: str
    voice: str
    style: str


async def render_images(
    engine: ImageEngine,
    request: ImageRequest,
    *,
    watermark_key: str,
    progress: Callable[[float], None] | None = None,
) -> ImageBatch:
    """Generate, then watermark each image and encode it as PNG (in a worker thread)."""
    made = await engine.generate(request, progress=progress)  # it checks the request

    def finish() -> tuple[ImageOutput, ...]:
        outputs = []
        for image, seed in zip(made.images, made.seeds, strict=True):
            metadata = {"model": made.model, "seed": str(seed), "steps": str(made.steps)}
            png = watermark_image(image, key=watermark_key, metadata=metadata)
            outputs.append(ImageOutput(png, image.width, image.height, seed))
        return tuple(outputs)

    return ImageBatch(await asyncio.to_thread(finish), made.model, made.steps)


async def render_speech(
    engine: TTSEngine, request: SpeechRequest, *, watermark_key: str
) -> SpeechOutput:
    """Synthesise, then watermark the samples and encode them (in a worker thread)."""
    made = await engine.synthesize(
        request.text,
        voice=request.voice,
        style=request.style,
        speed=request.speed,
        seed=request.seed,
    )

    def finish() -> tuple[bytes, str]:
        marked = watermark_audio(made.samples, made.sample_rate, key=watermark_key)
        return encode_audio(marked, made.sample_rate, request.format)

    audio, content_type = await asyncio.to_thread(finish)
    return SpeechOutput(
        audio=audio,
        content_type=content_type,
        format=request.format,
        sample_rate=made.sample_rate,
        duration_s=round(made.samples.size / made.sample_rate, 3),
        engine=made.engine,
        model=made.model,
        voice=made.voice,
        style=made.style,
    )

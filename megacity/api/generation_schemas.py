"""Request bodies of the generation endpoints: OpenAI's images/speech, and the K-zone jobs.

The OpenAI bodies accept what the official client sends (unknown fields are ignored, as
OpenAI-compatible servers do) plus MegaCity's extensions (steps, seed, negative_prompt,
style). Limits here are the router's outer bounds; an engine checks its own (a node's
max size or steps) and refuses with a 4xx that reaches the client or the job's error.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from megacity.errors import BadRequest, PayloadTooLarge

if TYPE_CHECKING:  # the engines (PIL, numpy) load with the first generation request
    from megacity.engines.generation import SpeechRequest
    from megacity.engines.image import ImageRequest

MAX_PROMPT_CHARS = 4000
MAX_SIDE = 2048
_SIZE = re.compile(r"^(\d{2,4})x(\d{2,4})$")
# OpenAI's voice names: clients send them; they mean "the model's default voice" here.
OPENAI_VOICES = frozenset(
    [
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "onyx",
        "nova",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    ]
)
AudioFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]  # engines/audio_encode.py


_SUBJECT = r"^[A-Za-z0-9._:@/-]{1,128}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # A real person's voice or face: the request must carry that person's consent record.
    subject_id: str | None = Field(
        default=None,
        pattern=_SUBJECT,
        description="the person whose voice/face is synthesised (needs consent_id)",
    )
    consent_id: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{32}$", description="the subject's consent record"
    )


class _ImageOptions(_Body):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str | None = Field(default=None, max_length=200)
    n: int = Field(default=1, ge=1, le=10)
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    steps: int | None = Field(
        default=None, ge=1, le=200, validation_alias=AliasChoices("steps", "num_inference_steps")
    )
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    guidance_scale: float | None = Field(default=None, ge=0, le=50)


class ImageGenerationBody(_ImageOptions):
    """OpenAI ``images.generate``: prompt, n, size "WxH", response_format (+ extensions)."""

    size: str = Field(default="512x512", max_length=20)
    response_format: Literal["url", "b64_json"] = "url"
    user: str | None = Field(default=None, max_length=256)  # OpenAI's; X-User-Id is ours

    def image_request(self) -> ImageRequest:
        width, height = parse_size(self.size)
        return _request(self, width, height)


class ThumbnailBody(_ImageOptions):
    """``POST /api/v1/kzone/generate/thumbnail``: a thumbnail job."""

    width: int = Field(default=512, ge=64, le=MAX_SIDE)
    height: int = Field(default=512, ge=64, le=MAX_SIDE)
    n: int = Field(default=1, ge=1, le=4)

    def image_request(self) -> ImageRequest:
        return _request(self, self.width, self.height)


def _request(body: _ImageOptions, width: int, height: int) -> ImageRequest:
    from megacity.engines.image import ImageRequest

    return ImageRequest(
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        width=width,
        height=height,
        steps=body.steps,
        seed=body.seed,
        n=body.n,
        guidance_scale=body.guidance_scale,
    )


def parse_size(size: str) -> tuple[int, int]:
    """OpenAI's "WxH" (or "auto": 512x512) as (width, height); 400 invalid_size otherwise."""
    if size == "auto":
        return 512, 512
    match = _SIZE.match(size)
    if match is None:
        raise BadRequest('size must be "WIDTHxHEIGHT", e.g. "512x512"', code="invalid_size")
    width, height = int(match[1]), int(match[2])
    if not (64 <= width <= MAX_SIDE and 64 <= height <= MAX_SIDE):
        raise BadRequest(f"each side must be 64..{MAX_SIDE} pixels", code="invalid_size")
    return width, height


class _SpeechOptions(_Body):
    model: str | None = Field(default=None, max_length=200)
    voice: str | None = Field(default=None, max_length=64)
    style: str = Field(default="neutral", max_length=32)
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)

    @field_validator("voice")
    @classmethod
    def _voice(cls, value: str | None) -> str | None:
        return None if value is None or value.lower() in OPENAI_VOICES else value


class SpeechBody(_SpeechOptions):
    """OpenAI ``audio.speech.create``: input, voice, response_format, speed (+ style, seed)."""

    input: str = Field(min_length=1, max_length=100_000)
    response_format: AudioFormat = "mp3"
    instructions: str | None = Field(default=None, max_length=4096)  # accepted, not used

    def speech_request(self) -> SpeechRequest:
        from megacity.engines.generation import SpeechRequest

        return SpeechRequest(
            self.input, self.voice, self.style, self.speed, self.seed, self.response_format
        )


def check_text_length(text: str, limit: int, field: str) -> None:
    """413 input_too_long when the text to speak is over `limit` characters."""
    if len(text) > limit:
        raise PayloadTooLarge(
            f"{field} is longer than {limit} characters", code="input_too_long", param=field
        )


class TTSBody(_SpeechOptions):
    """``POST /api/v1/kzone/tts``: a TTS job."""

    text: str = Field(min_length=1, max_length=100_000)
    format: AudioFormat = "wav"

    def speech_request(self) -> SpeechRequest:
        from megacity.engines.generation import SpeechRequest

        return SpeechRequest(self.text, self.voice, self.style, self.speed, self.seed, self.format)

"""Request and response schemas of the HTTP API (the OpenAPI document is built from them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from megacity.api.openapi_doc import MODEL_ENUM

MAX_MESSAGES = 512
MAX_MODEL_NAME = 256
# = scoring.pronunciation.MAX_TEXT_CHARS (not imported: it would load numpy at start-up;
# tests/api/test_schema_lists.py checks that the two agree)
MAX_TEXT_CHARS = 5000


class ContentPart(BaseModel):
    """One part of a multimodal message: text, image_url, input_audio, …"""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=64)
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=256)


class _Sampling(BaseModel):
    """Fields the router reads; any other OpenAI/vLLM field passes through untouched."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=MAX_MODEL_NAME, description="name, alias or auto")
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=16)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)


class CompletionRequest(_Sampling):
    prompt: str | list[str] = Field(description="a prompt or a list of prompts")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "megacity"
    root: str | None = None
    parent: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=128)


class TutorOptions(BaseModel):
    """Options every tutor strategy accepts beside its own typed fields."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="auto",
        min_length=1,
        max_length=MAX_MODEL_NAME,
        json_schema_extra={MODEL_ENUM: "llm"},
    )
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)


# A reference text must hold something to score (a letter or digit of the platform's
# scripts); the document says so, so that generated clients and fuzzers know it.
WORD_PATTERN = (
    "[0-9A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
    "\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff\uac00-\ud7a3]"
)
REFERENCE_TEXT: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TEXT_CHARS,
    "pattern": WORD_PATTERN,
}


class RecognizedWordIn(BaseModel):
    """One word from a recogniser: seconds from the start, probability 0..1."""

    model_config = ConfigDict(extra="forbid")

    word: str = Field(max_length=256)
    start: float = Field(ge=0, le=86_400)
    end: float = Field(ge=0, le=86_400)
    probability: float = Field(default=1.0, ge=0, le=1)


class VoiceScoreRequest(BaseModel):
    """POST /api/v1/kzone/voice/score: score a transcript (and its word timings) without audio."""

    model_config = ConfigDict(extra="forbid")

    reference_text: str = Field(
        min_length=1, max_length=MAX_TEXT_CHARS, json_schema_extra={"pattern": WORD_PATTERN}
    )
    language: Literal["ko", "en", "ja", "zh"]
    mode: Literal["read", "shadowing", "singalong"] = "read"
    transcript: str = Field(max_length=5000)
    words: list[RecognizedWordIn] | None = Field(default=None, max_length=2000)


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class RegistryView(BaseModel):
    models: list[dict[str, Any]]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope} for status in (400, 403, 404, 413, 502, 503, 504)
}
AUDIO_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope} for status in (400, 403, 404, 413, 415, 422, 502, 503, 504)
}

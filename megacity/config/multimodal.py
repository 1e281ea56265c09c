"""The multimodal tutor's policy: stage deadlines, when a video becomes a job, the feature cache.

Override any field with MEGACITY_MULTIMODAL as JSON, e.g.
'{"deadlines": {"vision": 10}, "inline_max_video_s": 20}'; fields not given keep their
defaults. Deadlines are seconds per stage; the overall deadline bounds the whole request
(each stage gets the smaller of its own deadline and what is left of the overall one).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StageDeadlines(BaseModel):
    """Seconds each step may take: extractors, the two LLM steps, the whole request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    speech: float = Field(default=60.0, gt=0)
    prosody: float = Field(default=30.0, gt=0)
    pose: float = Field(default=90.0, gt=0)
    face: float = Field(default=60.0, gt=0)
    vision: float = Field(default=30.0, gt=0)
    core: float = Field(default=30.0, gt=0)
    accelerator: float = Field(default=20.0, gt=0)
    overall: float = Field(default=150.0, gt=0)  # an inline request, end to end
    job: float = Field(default=900.0, gt=0)  # a long video run as a job

    def of(self, stage: str) -> float:
        """The deadline of `stage` (an extractor's or step's name); `overall` otherwise."""
        value = getattr(self, stage, None)
        return float(value) if isinstance(value, int | float) else self.overall


class MultimodalPolicy(BaseModel):
    """How `POST /api/v1/ai/multimodal` runs (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deadlines: StageDeadlines = StageDeadlines()
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)  # the whole form
    max_images: int = Field(default=4, ge=1, le=16)
    inline_max_video_s: float = Field(default=30.0, gt=0)  # longer: a job (202)
    max_video_s: float = Field(default=300.0, gt=0)
    max_audio_s: float = Field(default=120.0, gt=0)
    face_fps: float = Field(default=5.0, gt=0, le=30)
    keyframes: int = Field(default=4, ge=1, le=16)  # frames of a video the VLM sees
    max_tokens: int = Field(default=700, ge=64, le=8192)  # per LLM step
    cache_entries: int = Field(default=256, ge=0)  # feature documents kept (0: off)
    cache_ttl_s: float = Field(default=600.0, ge=0)
    input_retention_s: float = Field(default=86_400.0, gt=0)  # a job's stored input, at most

    @model_validator(mode="before")
    @classmethod
    def _merge(cls, data: Any) -> Any:
        """A partial `deadlines` keeps the other stages' defaults."""
        if isinstance(data, dict) and isinstance(data.get("deadlines"), dict):
            return {**data, "deadlines": {**StageDeadlines().model_dump(), **data["deadlines"]}}
        return data

    @model_validator(mode="after")
    def _bounds(self) -> MultimodalPolicy:
        if self.inline_max_video_s > self.max_video_s:
            raise ValueError("inline_max_video_s is above max_video_s")
        return self


__all__ = ["MultimodalPolicy", "StageDeadlines"]

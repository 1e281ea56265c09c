"""What a learner sent to the multimodal tutor: text, media and options, checked and hashed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from megacity.engines.upload import MediaUpload
from megacity.errors import BadRequest

MediaKind = Literal["image", "video", "audio"]
MULTIMODAL = "multimodal"  # the job kind of a long video (pipelines/multimodal/job.py)
MAX_TEXT_CHARS = 4000
MAX_SCRIPT_CHARS = 2000
LEVELS = ("beginner", "intermediate", "advanced")
SPOKEN = ("ko", "en", "ja", "zh")


class Scenario(StrEnum):
    """What the learner wants: coaching a dance, a drama line, homework, or anything else."""

    AUTO = "auto"
    DANCE_COACH = "dance_coach"
    DRAMA_COACH = "drama_coach"
    HOMEWORK = "homework"
    GENERAL = "general"


@dataclass(frozen=True, slots=True)
class Media:
    """One uploaded file, its kind and its SHA-256 (the cache key; never the bytes)."""

    kind: MediaKind
    upload: MediaUpload
    sha256: str

    @classmethod
    def of(cls, kind: MediaKind, upload: MediaUpload) -> Media:
        return cls(kind, upload, hashlib.sha256(upload.data).hexdigest())

    @property
    def size(self) -> int:
        return len(self.upload.data)


@dataclass(frozen=True)
class TutorRequest:
    """One request to the tutor (API form or job payload), validated by `check`."""

    text: str = ""
    images: tuple[Media, ...] = ()
    video: Media | None = None
    audio: Media | None = None
    scenario: Scenario = Scenario.AUTO
    reference_id: str | None = None  # a stored dance reference
    script: str | None = None  # the line the learner performs (drama)
    language: str | None = None  # what is spoken (ko/en/ja/zh); None: the script's, else the locale
    locale: str = "ko"  # the learner's language: the answer is written in it
    level: str = "intermediate"
    voice: bool = False  # also speak the summary (a TTS job)
    stream: bool = False

    def check(self) -> TutorRequest:
        """400 for an empty request or a field out of bounds; returns self."""
        if not (self.text.strip() or self.images or self.video or self.audio):
            raise BadRequest(
                "send at least one of text, image, video or audio",
                code="empty_request",
                param="text",
            )
        if len(self.text) > MAX_TEXT_CHARS:
            raise BadRequest(f"text is longer than {MAX_TEXT_CHARS} characters", param="text")
        if self.script is not None and len(self.script) > MAX_SCRIPT_CHARS:
            raise BadRequest(f"script is longer than {MAX_SCRIPT_CHARS} characters", param="script")
        if self.language is not None and self.language not in SPOKEN:
            raise BadRequest(
                f"language must be one of {', '.join(SPOKEN)}",
                code="unsupported_language",
                param="language",
            )
        if self.level not in LEVELS:
            raise BadRequest(f"level must be one of {', '.join(LEVELS)}", param="level")
        return self

    def spoken_language(self) -> str:
        """The language spoken: `language`, else the script's (by its script), else the locale."""
        if self.language is not None:
            return self.language
        if self.script:
            from megacity.routing.classifier import detect_language

            return detect_language(self.script)
        return self.locale

    @property
    def media(self) -> tuple[Media, ...]:
        found = [*self.images]
        if self.video is not None:
            found.append(self.video)
        if self.audio is not None:
            found.append(self.audio)
        return tuple(found)

    def fingerprint(self) -> str:
        """What makes two requests the same: scenario, text, script, reference, media hashes."""
        parts = [
            self.scenario.value,
            self.language or "",
            self.locale,
            self.level,
            self.text.strip(),
            self.script or "",
            self.reference_id or "",
            *(f"{m.kind}:{m.sha256}" for m in self.media),
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

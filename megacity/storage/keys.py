"""Object keys: the platform's key layout, one builder per kind, and strict sanitising.

Every client-supplied part of a key (a user id, a reference id, a file name) is hostile
until checked here. A key is 1-16 segments joined by "/"; a segment is 1-128 ASCII
characters from [A-Za-z0-9._-] that does not start with "." (so no ".", "..", hidden
files, nor clashes with the store's own dot-files). ASCII only: such keys mean the same
bytes on every filesystem and S3-compatible store and need no URL escaping.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from megacity.errors import BadRequest

MAX_KEY_CHARS = 1024  # the S3 limit
MAX_SEGMENT_CHARS = 128
MAX_SEGMENTS = 16

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_PARTIAL = re.compile(r"([A-Za-z0-9_-][A-Za-z0-9._-]{0,127})?")
_EXT = re.compile(r"[a-z0-9]{1,10}")
_STAMP = r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}"
_SEG = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"


class Kind(StrEnum):
    """What an object is; retention policies key on it."""

    AUDIO = "audio"
    VIDEO = "video"
    IMAGE = "image"
    KEYPOINTS = "keypoints"
    ATTACHMENT = "attachment"
    PROFILE = "profile"
    MODEL = "model"
    GENERATED = "generated"
    CONTOUR = "contour"


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """A checked key in the platform layout and the kind of object stored under it."""

    key: str
    kind: Kind

    def __str__(self) -> str:
        return self.key


# The layout, one pattern per builder below; kind_of() reads a key back with it.
_LAYOUT: tuple[tuple[re.Pattern[str], Kind], ...] = tuple(
    (re.compile(pattern), kind)
    for pattern, kind in (
        (rf"kzone/audio/{_SEG}/{_STAMP}\.[a-z0-9]+", Kind.AUDIO),
        (rf"kzone/video/{_SEG}/{_STAMP}\.[a-z0-9]+", Kind.VIDEO),
        (rf"kzone/dance/references/{_SEG}/keypoints\.npz", Kind.KEYPOINTS),
        (rf"kzone/dance/references/{_SEG}/video\.[a-z0-9]+", Kind.VIDEO),
        (rf"kzone/dance/analyses/{_SEG}/{_SEG}\.png", Kind.IMAGE),
        (rf"exams/{_SEG}/attachments/{_SEG}", Kind.ATTACHMENT),
        (rf"users/{_SEG}/profile/{_SEG}", Kind.PROFILE),
        (rf"ai-models/{_SEG}/{_SEG}/{_SEG}", Kind.MODEL),
        (rf"kzone/generated/{_SEG}/{_SEG}\.[a-z0-9]+", Kind.GENERATED),
        (rf"kzone/voice/references/{_SEG}/contour\.npz", Kind.CONTOUR),
        (rf"kzone/multimodal/{_SEG}/{_STAMP}-video\.bin", Kind.VIDEO),
        (rf"kzone/multimodal/{_SEG}/{_STAMP}-audio\.bin", Kind.AUDIO),
        (rf"kzone/multimodal/{_SEG}/{_STAMP}-image[0-9]+\.bin", Kind.IMAGE),
    )
)


def _invalid(reason: str, param: str) -> BadRequest:
    return BadRequest(f"invalid object key: {reason}", code="invalid_key", param=param)


def _check_chars(value: str, param: str) -> None:
    if "\\" in value:
        raise _invalid("backslashes are not allowed", param)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _invalid("control characters are not allowed", param)
    if value.startswith("/"):
        raise _invalid("absolute paths are not allowed", param)


def segment(value: str, param: str = "key") -> str:
    """One checked key segment (an id or a file name); BadRequest(invalid_key) otherwise."""
    if not isinstance(value, str) or value == "":
        raise _invalid("empty segment", param)
    _check_chars(value, param)
    if "/" in value:
        raise _invalid("a segment may not contain '/'", param)
    if value in (".", ".."):
        raise _invalid("'.' and '..' are not allowed", param)
    if len(value) > MAX_SEGMENT_CHARS:
        raise _invalid(f"a segment is longer than {MAX_SEGMENT_CHARS} characters", param)
    if not _SEGMENT.fullmatch(value):
        raise _invalid("use only A-Z, a-z, 0-9, '.', '_' and '-', and do not start with '.'", param)
    return value


def validate_key(key: str, param: str = "key") -> str:
    """A whole key, checked segment by segment; returned unchanged."""
    if not isinstance(key, str) or key == "":
        raise _invalid("empty key", param)
    if len(key) > MAX_KEY_CHARS:
        raise _invalid(f"longer than {MAX_KEY_CHARS} characters", param)
    _check_chars(key, param)
    parts = key.split("/")
    if len(parts) > MAX_SEGMENTS:
        raise _invalid(f"more than {MAX_SEGMENTS} segments", param)
    for part in parts:
        segment(part, param)
    return key


def validate_prefix(prefix: str, param: str = "prefix") -> str:
    """A listing prefix: "" or whole segments, optionally ending in "/" or a partial segment."""
    if prefix == "":
        return prefix
    if len(prefix) > MAX_KEY_CHARS:
        raise _invalid(f"longer than {MAX_KEY_CHARS} characters", param)
    _check_chars(prefix, param)
    *whole, last = prefix.split("/")
    for part in whole:
        segment(part, param)
    if not _PARTIAL.fullmatch(last):
        raise _invalid("the last segment of the prefix has characters outside the key set", param)
    return prefix


def extension(ext: str, param: str = "ext") -> str:
    """A file extension without its dot, lower-cased: 1-10 of [a-z0-9]."""
    value = ext.lower().removeprefix(".") if isinstance(ext, str) else ""
    if not _EXT.fullmatch(value):
        raise _invalid("an extension is 1-10 letters or digits", param)
    return value


def kind_of(key: str) -> Kind | None:
    """The kind of a key in the platform layout; None for a key outside it."""
    for pattern, kind in _LAYOUT:
        if pattern.fullmatch(key):
            return kind
    return None


def timestamp(at: datetime | None = None) -> str:
    """A sortable, collision-proof name stem: 20250101T120000.123456Z-1a2b3c4d (UTC)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S.%f}Z-{secrets.token_hex(4)}"


def _key(kind: Kind, *parts: str) -> ObjectKey:
    return ObjectKey(validate_key("/".join(parts)), kind)


def audio_key(user_id: str, *, ext: str = "wav", at: datetime | None = None) -> ObjectKey:
    """kzone/audio/{user_id}/{timestamp}.{ext}: a learner's recording."""
    stem = timestamp(at)
    return _key(Kind.AUDIO, "kzone/audio", segment(user_id, "user_id"), f"{stem}.{extension(ext)}")


def video_key(user_id: str, *, ext: str = "mp4", at: datetime | None = None) -> ObjectKey:
    """kzone/video/{user_id}/{timestamp}.{ext}: a learner's video."""
    stem = timestamp(at)
    return _key(Kind.VIDEO, "kzone/video", segment(user_id, "user_id"), f"{stem}.{extension(ext)}")


def reference_keypoints_key(reference_id: str) -> ObjectKey:
    """kzone/dance/references/{reference_id}/keypoints.npz: a reference's pose sequence."""
    rid = segment(reference_id, "reference_id")
    return _key(Kind.KEYPOINTS, "kzone/dance/references", rid, "keypoints.npz")


def reference_video_key(reference_id: str, ext: str = "mp4") -> ObjectKey:
    """kzone/dance/references/{reference_id}/video.{ext}: a reference's source video."""
    rid = segment(reference_id, "reference_id")
    return _key(Kind.VIDEO, "kzone/dance/references", rid, f"video.{extension(ext)}")


def voice_contour_key(reference_id: str) -> ObjectKey:
    """kzone/voice/references/{reference_id}/contour.npz: a voice reference's pitch contour
    and word timings (the song or line itself is not kept)."""
    rid = segment(reference_id, "reference_id")
    return _key(Kind.CONTOUR, "kzone/voice/references", rid, "contour.npz")


def analysis_image_key(analysis_id: str, name: str) -> ObjectKey:
    """kzone/dance/analyses/{analysis_id}/{name}.png: a picture made for one analysis."""
    aid = segment(analysis_id, "analysis_id")
    return _key(Kind.IMAGE, "kzone/dance/analyses", aid, f"{segment(name, 'name')}.png")


def exam_attachment_key(exam_id: str, filename: str) -> ObjectKey:
    """exams/{exam_id}/attachments/{filename}."""
    eid = segment(exam_id, "exam_id")
    return _key(Kind.ATTACHMENT, "exams", eid, "attachments", segment(filename, "filename"))


def profile_key(user_id: str, filename: str) -> ObjectKey:
    """users/{user_id}/profile/{filename}: a profile picture or similar."""
    uid = segment(user_id, "user_id")
    return _key(Kind.PROFILE, "users", uid, "profile", segment(filename, "filename"))


def model_key(model: str, version: str, filename: str) -> ObjectKey:
    """ai-models/{model}/{version}/{filename}: one file of one model version."""
    parts = (segment(model, "model"), segment(version, "version"), segment(filename, "filename"))
    return _key(Kind.MODEL, "ai-models", *parts)


def generated_key(user_id: str, name: str, ext: str) -> ObjectKey:
    """kzone/generated/{user_id}/{name}.{ext}: an image or audio a generation job made.

    `name` is derived from the job id, so a retried job writes the same keys again
    instead of leaving orphans behind.
    """
    uid = segment(user_id, "user_id")
    return _key(Kind.GENERATED, "kzone/generated", uid, f"{segment(name, 'name')}.{extension(ext)}")


def multimodal_input_key(user_id: str, media: str, *, at: datetime | None = None) -> ObjectKey:
    """kzone/multimodal/{user_id}/{timestamp}-{media}.bin: an input a multimodal job reads
    (``video``, ``audio``, ``image0`` …), deleted when the job ends."""
    kinds = {"video": Kind.VIDEO, "audio": Kind.AUDIO}
    kind = kinds.get(media, Kind.IMAGE)
    if media not in kinds and not re.fullmatch(r"image[0-9]{1,2}", media):
        raise _invalid("a multimodal input is video, audio or image<N>", "media")
    stem = f"{timestamp(at)}-{media}"
    return _key(kind, "kzone/multimodal", segment(user_id, "user_id"), f"{stem}.bin")

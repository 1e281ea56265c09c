"""The relational model: stored objects (for retention) and dance references.

Timestamps are timezone-aware UTC on every backend: SQLite keeps no zone, so UTCDateTime
refuses naive values on the way in and attaches UTC on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint and index names: migrations and autogenerate compare them by name.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
KEY_LENGTH = 1024  # object keys (see megacity.storage.keys)
ID_LENGTH = 128  # user ids and other ids supplied by the platform


class UTCDateTime(TypeDecorator[datetime]):
    """DateTime(timezone=True) that stores and returns aware UTC datetimes only."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: pass an aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value)!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class StoredObject(Base):
    """One object in the object store, with what a retention sweep needs to find it."""

    __tablename__ = "stored_objects"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]

    __table_args__ = (
        Index(None, "expires_at"),  # sweep: expired objects
        Index(None, "kind", "created_at"),  # sweep: objects of a kind older than its policy
        Index(None, "owner_id"),  # a user's objects (export, erasure)
    )


class DanceReference(Base):
    """A reference dance: its pose sequence (and video) in the store, its shape here.

    Its objects cannot be removed from stored_objects while it exists (ON DELETE
    RESTRICT); `references.delete_reference` removes the row and its objects together.
    """

    __tablename__ = "dance_references"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    title: Mapped[str] = mapped_column(String(200))
    bpm: Mapped[float | None] = mapped_column(Float)
    owner_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    fps: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    keypoints_key: Mapped[str] = mapped_column(
        ForeignKey("stored_objects.key", ondelete="RESTRICT")
    )
    video_key: Mapped[str | None] = mapped_column(
        ForeignKey("stored_objects.key", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(None, "created_at"),  # newest first
        Index(None, "owner_id", "created_at"),  # one owner's, newest first
        UniqueConstraint("keypoints_key"),  # an object belongs to one reference at most;
        UniqueConstraint("video_key"),  # also the index ON DELETE RESTRICT checks use
    )


class VoiceReference(Base):
    """A reference recording for sing-along or shadowing: its text here, its pitch contour
    and word timings in the store (``features_key``, ON DELETE RESTRICT like a dance's)."""

    __tablename__ = "voice_references"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    title: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(16))  # singalong | shadowing
    text: Mapped[str] = mapped_column(Text)  # lyrics or script
    owner_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    duration_s: Mapped[float] = mapped_column(Float)
    voiced_s: Mapped[float] = mapped_column(Float)
    median_f0_hz: Mapped[float] = mapped_column(Float)
    words: Mapped[int] = mapped_column(Integer)  # reference words with a timing
    features_key: Mapped[str] = mapped_column(ForeignKey("stored_objects.key", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(None, "created_at"),
        Index(None, "owner_id", "created_at"),
        UniqueConstraint("features_key"),
    )


class Job(Base):
    """One durable AI job (thumbnail, TTS, video analysis …): the source of truth of its state.

    `available_at` is when the row may next be claimed: for a queued job the end of its
    backoff, for a running one the end of the worker's lease (a lease that runs out
    means the worker died, and the job is taken over). `attempts` counts claims.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    kind: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(SmallInteger)  # 0 high, 1 normal, 2 low
    status: Mapped[str] = mapped_column(String(16))  # queued running succeeded failed cancelled
    owner_id: Mapped[str] = mapped_column(String(ID_LENGTH))  # "" for an anonymous job
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[Any] = mapped_column(JSON)
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[Any | None] = mapped_column(JSON)  # {"code", "message"}
    progress: Mapped[float] = mapped_column(Float)  # 0..1
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    available_at: Mapped[datetime]
    # The region whose workers run it (its stream is jobs:{region}:…); None: the default.
    region: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "status", "available_at"),  # claim: the next due job
        Index(None, "status", "finished_at"),  # the dashboard: jobs finished in a window
        Index(None, "owner_id", "created_at"),  # one owner's jobs, newest first
        UniqueConstraint("owner_id", "idempotency_key"),  # a client retry finds its job
    )


class Feedback(Base):
    """Whether an AI result was right, with the learner's coarse demographic buckets.

    Rows feed the bias report (accuracy per group); the buckets are coarse on purpose
    (an age band, not a birth date) and every one of them is optional.
    """

    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    result_id: Mapped[str] = mapped_column(String(ID_LENGTH))  # the job / answer judged
    engine: Mapped[str | None] = mapped_column(String(32))  # llm, speech, pose, ...
    zone: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    is_correct: Mapped[bool] = mapped_column(Boolean)
    age_band: Mapped[str | None] = mapped_column(String(16))  # e.g. "13-15"
    l1_language: Mapped[str | None] = mapped_column(String(16))  # first language, e.g. "ko"
    region: Mapped[str | None] = mapped_column(String(64))
    gender: Mapped[str | None] = mapped_column(String(16))
    owner_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))  # who gave the feedback
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(None, "created_at"),  # the report's time window
        Index(None, "result_id"),  # feedback on one result
    )


class ApiKey(Base):
    """A service API key for backend-to-backend calls; only its SHA-256 digest is stored.

    The key itself (``mk_<id>_<secret>``) is shown once, when it is created. ``scopes``
    and ``zones`` are space-separated lists (``zones`` empty: every zone).
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the public part of the key
    name: Mapped[str] = mapped_column(String(ID_LENGTH))  # which service holds it
    digest: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the whole key
    scopes: Mapped[str] = mapped_column(String(256))
    zones: Mapped[str] = mapped_column(String(1024), default="")
    # The user group its requests count under on the dashboard (a school's LMS…), if any.
    group_name: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Consent(Base):
    """A person's consent to have their voice or face synthesised (or cloned), revocable.

    ``subject_id`` is the person whose voice/face it is; ``granted_by`` who gave the
    consent (the subject, or a guardian for a minor); ``owner_id`` the platform user or
    service that recorded it. ``scopes`` is a space-separated list of voice_clone,
    voice_synthesis and face_synthesis.
    """

    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    subject_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    granted_by: Mapped[str] = mapped_column(String(ID_LENGTH))
    owner_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    scopes: Mapped[str] = mapped_column(String(256))
    evidence: Mapped[str | None] = mapped_column(String(1024))  # e.g. the signed form's id
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))

    __table_args__ = (Index(None, "subject_id"), Index(None, "owner_id", "created_at"))


class ModelActivation(Base):
    """The active version of a model, set at run time, shared by every replica.

    The topology file says which version is active at first; a row here (written by
    `POST /api/v1/models/{name}/activate`) wins over it, so an activation survives
    restarts and every router and worker reading the same database agrees on it.
    """

    __tablename__ = "model_activations"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(128))
    activated_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))

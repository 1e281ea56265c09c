"""Long videos: the tutor as a job (kind ``multimodal``), whose result is the same document.

A video longer than the inline limit is not analysed inside the HTTP request: its media
are stored as the job's input (``kzone/multimodal/{user}/…``, with an expiry of
``input_retention_s`` as a safety net), the job is queued (202), and a worker — the
embedded one or `megacity worker` — runs the same steps without a stream. The inputs are
deleted as soon as the job has its answer or fails for good: learners' faces and voices
are not kept, only the derived features in the job's result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from megacity.db import Database
from megacity.db.models import StoredObject
from megacity.db.objects import record_object
from megacity.engines.upload import MediaUpload
from megacity.errors import MegaCityError
from megacity.jobs import Handlers, JobContext, PermanentJobError
from megacity.observability.anonymize import UserHasher
from megacity.pipelines.guard import Caller
from megacity.pipelines.multimodal.request import (
    MULTIMODAL,
    Media,
    MediaKind,
    Scenario,
    TutorRequest,
)
from megacity.pipelines.multimodal.tutor import MultimodalTutor
from megacity.pipelines.origin import JobOrigin
from megacity.routing.context import RequestContext
from megacity.routing.selector import ModelSelector
from megacity.storage import ObjectStore, keys

log = logging.getLogger("megacity.multimodal")

ANONYMOUS = "anonymous"


class StoredMedia(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: MediaKind
    key: str
    filename: str = Field(max_length=64)
    content_type: str = Field(max_length=255)


class MultimodalPayload(JobOrigin):
    """A multimodal job: who asked from where, the request's fields, its stored media."""

    locale: str
    text: str = ""
    scenario: Scenario
    reference_id: str | None = None
    script: str | None = None
    language: str | None = None
    level: str = "intermediate"
    voice: bool = False
    media: list[StoredMedia]


@dataclass(frozen=True)
class MultimodalJobs:
    """Stores a request's media and queues it; runs such jobs in a worker."""

    tutor: MultimodalTutor
    store: ObjectStore
    db: Database
    selector: ModelSelector
    hasher: UserHasher

    def register(self, handlers: Handlers) -> None:
        deadline = self.tutor.tools.policy.deadlines.job
        handlers.register(MULTIMODAL, self.run, timeout_s=deadline + 60)

    async def payload(self, request: TutorRequest, ctx: RequestContext) -> dict[str, Any]:
        """Store the request's media (with an expiry) and return the job's payload."""
        retention = timedelta(seconds=self.tutor.tools.policy.input_retention_s)
        owner = ctx.user_id or ANONYMOUS
        names = [("video", request.video), ("audio", request.audio)]
        names += [(f"image{i}", m) for i, m in enumerate(request.images)]
        stored = [
            await asyncio.to_thread(self._put, owner, name, media, ctx.user_id, retention)
            for name, media in names
            if media is not None
        ]
        return MultimodalPayload(
            **JobOrigin.fields_of(ctx),
            locale=request.locale,
            text=request.text,
            scenario=request.scenario,
            reference_id=request.reference_id,
            script=request.script,
            language=request.language,
            level=request.level,
            voice=request.voice,
            media=stored,
        ).model_dump(mode="json")

    def _put(
        self, owner: str, name: str, media: Media, user: str | None, retention: timedelta
    ) -> StoredMedia:
        key = keys.multimodal_input_key(owner, name)
        info = self.store.put(str(key), media.upload.data, "application/octet-stream")
        expires = datetime.now(UTC) + retention
        with self.db.session() as session:
            record_object(session, info, key.kind, owner_id=user, expires_at=expires)
        return StoredMedia(
            kind=media.kind,
            key=str(key),
            filename=media.upload.filename,
            content_type=media.upload.content_type,
        )

    async def run(self, job: JobContext) -> dict[str, Any]:
        """One attempt: load the media, run the tutor, delete the media once it is done."""
        try:
            payload = MultimodalPayload.model_validate(job.payload)
        except ValidationError as exc:
            raise PermanentJobError(f"invalid job payload: {exc.errors()[0]['msg']}") from None
        try:
            request = await self._request(payload)
            ctx = payload.context(payload.locale)
            zone_id, zone = self.selector.zone(ctx)
            caller = Caller(self.hasher(payload.user_id), zone_id, zone.safety, payload.locale)
            deadline = self.tutor.tools.policy.deadlines.job
            run = await self.tutor.start(
                request, ctx, caller, time.perf_counter(), deadline_s=deadline
            )
            result = await run.result()
        except MegaCityError as exc:
            if 400 <= exc.status < 500:  # the request itself is bad: it never will succeed
                await self._forget(payload)
                raise PermanentJobError(exc.message, code=exc.code) from exc
            raise
        await self._forget(payload)
        return result

    async def _request(self, payload: MultimodalPayload) -> TutorRequest:
        loaded: dict[str, Media] = {}
        images: list[Media] = []
        for item in payload.media:
            data = await asyncio.to_thread(self.store.get, item.key)
            media = Media.of(item.kind, MediaUpload(data, item.filename, item.content_type))
            if item.kind == "image":
                images.append(media)
            else:
                loaded[item.kind] = media
        return TutorRequest(
            text=payload.text,
            images=tuple(images),
            video=loaded.get("video"),
            audio=loaded.get("audio"),
            scenario=payload.scenario,
            reference_id=payload.reference_id,
            script=payload.script,
            language=payload.language,
            locale=payload.locale,
            level=payload.level,
            voice=payload.voice,
        )

    async def _forget(self, payload: MultimodalPayload) -> None:
        """Delete the job's stored media: bytes first, then the row (a failed delete keeps the
        row, whose expiry the retention sweep then honours)."""

        def run() -> None:
            for item in payload.media:
                try:
                    self.store.delete(item.key)
                except Exception as exc:  # any store error: the row and its expiry stay
                    log.warning(
                        "multimodal input not deleted", extra={"key": item.key, "error": str(exc)}
                    )
                    continue
                with self.db.session() as session:
                    row = session.get(StoredObject, item.key)
                    if row is not None:
                        session.delete(row)

        await asyncio.to_thread(run)

"""Generation jobs: ``thumbnail`` and ``tts``, run by a job worker (embedded or `megacity worker`).

A job's payload is what the API checked and decided at submission (the model, the
caller's zone, region and user); the handler asks the generation gateway for the
artefacts (watermarked where they are made), stores them under keys derived from the job
id — so a retried attempt overwrites instead of leaving orphans — records each object's
row (the kind's retention applies: ``generated``, 90 days by default) and returns a
result holding the keys. URLs are signed when a client reads the job, never stored, so
they cannot expire inside the result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar

from pydantic import ValidationError

from megacity.db import Database
from megacity.db.objects import record_object
from megacity.engines.generation import SpeechRequest
from megacity.engines.image import ImageRequest
from megacity.errors import MegaCityError
from megacity.jobs import Handlers, JobContext, PermanentJobError
from megacity.pipelines.origin import JobOrigin
from megacity.routing.context import RequestContext
from megacity.routing.generation import GenerationGateway
from megacity.storage import ObjectInfo, ObjectStore, keys

D = TypeVar("D")
THUMBNAIL = "thumbnail"
TTS = "tts"
ANONYMOUS = "anonymous"  # the key segment of jobs submitted without a user id


class GenerationPayload(JobOrigin):
    """A generation job's payload: the model decided at submission, the engine request,
    and who submitted it from where (the request context the job runs with)."""

    model: str
    request: dict[str, Any]


def job_payload(
    ctx: RequestContext, model: str, request: ImageRequest | SpeechRequest
) -> dict[str, Any]:
    """The JSON payload of a thumbnail (ImageRequest) or TTS (SpeechRequest) job."""
    return GenerationPayload(
        **JobOrigin.fields_of(ctx), model=model, request=asdict(request)
    ).model_dump()


class GenerationStudio:
    """Runs generation jobs: gateway → object store + rows → a result of keys."""

    def __init__(self, gateway: GenerationGateway, store: ObjectStore, db: Database) -> None:
        self._gateway = gateway
        self._store = store
        self._db = db

    def register(self, handlers: Handlers) -> None:
        """Add the ``thumbnail`` and ``tts`` job kinds to `handlers`."""
        handlers.register(THUMBNAIL, self.thumbnail)
        handlers.register(TTS, self.tts)

    async def thumbnail(self, job: JobContext) -> dict[str, Any]:
        """Generate the job's images and store them as PNGs."""
        payload = _payload(job.payload)
        request = _build(ImageRequest, payload.request)
        ctx = payload.context()
        with _permanent_on_client_error():
            made = await self._gateway.images(
                ctx,
                payload.model,
                request,
                started=time.perf_counter(),
                progress=_reporter(job, scale=0.9),
            )
        batch = made.value
        owner = payload.user_id or ANONYMOUS
        stored = []
        for index, image in enumerate(batch.images):
            key = keys.generated_key(owner, f"{job.job_id}-{index}", "png")
            info = await self._put(key, image.png, "image/png", payload.user_id)
            item = {"width": image.width, "height": image.height, "seed": image.seed}
            stored.append({**_file(info), **item})
        await job.progress(1.0)
        return {
            "model": payload.model,
            "steps": batch.steps,
            "node": made.node,
            "watermarked": True,
            "images": stored,
        }

    async def tts(self, job: JobContext) -> dict[str, Any]:
        """Synthesise the job's text and store the audio."""
        payload = _payload(job.payload)
        request = _build(SpeechRequest, payload.request)
        with _permanent_on_client_error():
            made = await self._gateway.speech(
                payload.context(), payload.model, request, started=time.perf_counter()
            )
        out = made.value
        key = keys.generated_key(payload.user_id or ANONYMOUS, job.job_id, out.format)
        info = await self._put(key, out.audio, out.content_type, payload.user_id)
        return {
            "model": payload.model,
            "engine": out.engine,
            "node": made.node,
            "voice": out.voice,
            "style": out.style,
            "format": out.format,
            "sample_rate": out.sample_rate,
            "duration_s": out.duration_s,
            "watermarked": True,
            "audio": _file(info),
        }

    async def _put(
        self, key: keys.ObjectKey, data: bytes, content_type: str, owner: str | None
    ) -> ObjectInfo:
        def run() -> ObjectInfo:
            info = self._store.put(str(key), data, content_type)
            with self._db.session() as session:
                record_object(session, info, key.kind, owner_id=owner)
            return info

        return await asyncio.to_thread(run)


def _file(info: ObjectInfo) -> dict[str, Any]:
    return {
        "key": info.key,
        "content_type": info.content_type,
        "size": info.size,
        "sha256": info.sha256,
    }


def _payload(raw: Any) -> GenerationPayload:
    try:
        return GenerationPayload.model_validate(raw)
    except ValidationError as exc:
        raise PermanentJobError(f"invalid job payload: {exc.errors()[0]['msg']}") from None


def _build(cls: type[D], fields: dict[str, Any]) -> D:
    try:
        return cls(**fields)
    except TypeError as exc:
        raise PermanentJobError(f"invalid job payload: {exc}") from None


@contextmanager
def _permanent_on_client_error() -> Iterator[None]:
    """A 4xx from the engine (bad size, unknown voice) can never succeed: fail the job now."""
    try:
        yield
    except MegaCityError as exc:
        if 400 <= exc.status < 500:
            raise PermanentJobError(exc.message, code=exc.code) from exc
        raise


def _reporter(job: JobContext, *, scale: float) -> Callable[[float], None]:
    """A thread-safe progress callback for the engine, throttled to 10 % steps."""
    loop = asyncio.get_running_loop()
    last = [0.0]

    def report(fraction: float) -> None:
        value = round(min(max(fraction, 0.0), 1.0) * scale, 2)
        if value - last[0] >= 0.1 or (fraction >= 1.0 and value > last[0]):
            last[0] = value
            asyncio.run_coroutine_threadsafe(job.progress(value), loop)

    return report

"""JobService: what the API uses — submit (idempotent), read, cancel — and the embedded worker.

With a Redis URL, a submitted job is committed to the jobs table and then published to
its stream for `megacity worker` processes; without one, the in-process
`EmbeddedWorker` runs it from the table.

A publish that fails after the commit does not fail the submission: the job is durable
and accepted, and the reconciler (chores.py, on the workers) publishes it again within
`jobs_reconcile_interval_s` or so. Failing the request instead would tell the client
"not accepted" about a job that may well run, and its retry (same idempotency key) would
find it anyway.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from megacity.config.settings import Settings
from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.jobs import JobStatus, Priority
from megacity.db.models import Job
from megacity.jobs.chores import Chores, build_chores
from megacity.jobs.embedded import EmbeddedWorker
from megacity.jobs.handlers import KIND, Handlers
from megacity.jobs.keys import Keys
from megacity.jobs.queue import RedisQueue
from megacity.jobs.runner import Policy, in_autocommit, in_tx

if TYPE_CHECKING:
    from megacity.storage.base import ObjectStore

log = logging.getLogger("megacity.jobs")


class CancelResult(enum.Enum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    NOT_QUEUED = "not_queued"  # running or finished: too late


def policy_from(settings: Settings) -> Policy:
    return Policy(
        lease_s=settings.jobs_visibility_timeout_s,
        backoff_s=settings.jobs_backoff_s,
        backoff_max_s=settings.jobs_backoff_max_s,
        timeout_s=settings.jobs_timeout_s,
    )


def redis_client(url: str) -> Redis:
    """An asyncio Redis client answering str (the queue's keys and fields are text).

    Bounded waits: a Redis that stops answering fails a call instead of hanging it (the
    workers' blocking reads wait at most a second, well inside the socket timeout).
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=5,
        socket_timeout=15,
    )


class JobService:
    """Submit, read and cancel jobs; owns the Redis client or the embedded worker."""

    def __init__(
        self,
        db: Database,
        *,
        redis: Redis | None = None,
        keys: Keys | None = None,
        max_attempts: int = 3,
        embedded: EmbeddedWorker | None = None,
        chores: Chores | None = None,
    ) -> None:
        self.db = db
        self.redis = redis
        self.queue = RedisQueue(redis, keys or Keys()) if redis is not None else None
        self.max_attempts = max_attempts
        self.embedded = embedded
        self.chores = chores

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        db: Database,
        handlers: Handlers,
        *,
        store: ObjectStore | None = None,
    ) -> JobService:
        """Redis Streams when `redis_url` is set, else the embedded worker (if enabled).

        With `store`, the service also runs the retention sweep every
        `retention_sweep_interval_s` (one process at a time); with Redis, the reconciler.
        """
        if settings.redis_url:
            redis = redis_client(settings.redis_url)
            keys = Keys(settings.jobs_key_prefix)
            return cls(
                db,
                redis=redis,
                keys=keys,
                max_attempts=settings.jobs_max_attempts,
                chores=build_chores(settings, db, redis=redis, keys=keys, store=store),
            )
        embedded = None
        if settings.jobs_embedded_worker:
            embedded = EmbeddedWorker(
                db,
                handlers,
                policy=policy_from(settings),
                concurrency=settings.jobs_concurrency,
                poll_s=settings.jobs_poll_interval_s,
                grace_s=settings.jobs_shutdown_grace_s,
            )
        chores = build_chores(settings, db, store=store) if embedded is not None else None
        return cls(db, embedded=embedded, max_attempts=settings.jobs_max_attempts, chores=chores)

    async def start(self) -> None:
        if self.embedded is not None:
            await self.embedded.start()
        if self.chores is not None:
            self.chores.start()

    async def stop(self) -> None:
        if self.chores is not None:
            await self.chores.stop()
        if self.embedded is not None:
            await self.embedded.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def submit(
        self,
        kind: str,
        payload: Any,
        *,
        owner_id: str = "",
        priority: Priority | str = Priority.NORMAL,
        idempotency_key: str | None = None,
        max_attempts: int | None = None,
    ) -> tuple[Job, bool]:
        """Queue a job; with an idempotency key already used by this owner, the existing
        job instead. Returns (job, created)."""
        if not KIND.match(kind):
            raise ValueError(f"invalid job kind {kind!r}")
        job, created = await in_autocommit(
            self.db,
            repo.create_job,
            kind=kind,
            payload=payload,
            owner_id=owner_id,
            priority=Priority.parse(priority),
            idempotency_key=idempotency_key,
            max_attempts=max_attempts or self.max_attempts,
        )
        if created:
            if self.queue is not None:
                await self._publish(job)
            elif self.embedded is not None:
                self.embedded.wake()
        return job, created

    async def _publish(self, job: Job) -> None:
        assert self.queue is not None
        try:
            await self.queue.publish(job.id, job.kind, Priority(job.priority))
        except (RedisError, OSError) as exc:  # the row is committed: the reconciler has it
            log.warning(
                "job stored but not published; the reconciler will publish it",
                extra={"job": job.id, "kind": job.kind, "error": str(exc)},
            )

    async def get(self, job_id: str, owner_id: str = "") -> Job | None:
        """The job, if it exists and belongs to `owner_id` (else None: ids do not leak)."""
        job = await in_tx(self.db, repo.get_job, job_id)
        if job is None or job.owner_id != owner_id:
            return None
        return job

    async def cancel(self, job_id: str, owner_id: str = "") -> tuple[CancelResult, Job | None]:
        """Cancel the owner's queued job; workers that meet it later skip it."""
        if await self.get(job_id, owner_id) is None:
            return CancelResult.NOT_FOUND, None
        job = await in_tx(self.db, repo.cancel_job, job_id)
        if job is None:
            return CancelResult.NOT_FOUND, None
        if job.status != JobStatus.CANCELLED:
            return CancelResult.NOT_QUEUED, job
        return CancelResult.CANCELLED, job

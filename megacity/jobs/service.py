"""JobService: what the API uses — submit (idempotent), read, cancel — and the embedded worker.

With a Redis URL, a submitted job is committed to the jobs table and then published to
its stream for `megacity worker` processes; without one, the in-process
`EmbeddedWorker` runs it from the table. Concurrent submissions are group-committed
(batch.py): those arriving while a write is in flight share the next INSERT, transaction
and `publish_many`; each caller is still answered only once its row is committed.

A publish that fails after the commit does not fail the submission: the job is durable
and accepted, and the reconciler (chores.py, on the workers) publishes it again within
`jobs_reconcile_interval_s` or so. Failing the request instead would tell the client
"not accepted" about a job that may well run, and its retry (same idempotency key) would
find it anyway.
"""

from __future__ import annotations

import asyncio
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
from megacity.db.replica import SessionFactory
from megacity.jobs.batch import GroupCommit
from megacity.jobs.chores import Chores, build_chores
from megacity.jobs.embedded import EmbeddedWorker
from megacity.jobs.handlers import KIND, Handlers
from megacity.jobs.keys import DEFAULT_REGION, Keys
from megacity.jobs.queue import RedisQueue
from megacity.jobs.runner import Policy, in_tx

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
    """Submit, read and cancel jobs; owns the Redis client or the embedded worker.

    A job is queued in the region it names (one of `regions`), else in `region`, this
    process's own; that region's workers run it (queue.py).
    """

    def __init__(
        self,
        db: Database,
        *,
        redis: Redis | None = None,
        keys: Keys | None = None,
        max_attempts: int = 3,
        embedded: EmbeddedWorker | None = None,
        chores: Chores | None = None,
        region: str = DEFAULT_REGION,
        regions: tuple[str, ...] = (),
    ) -> None:
        self.db = db
        self.redis = redis
        self.region = region
        self.regions = frozenset((region, *regions))
        self.queue = RedisQueue(redis, keys or Keys(), region=region) if redis is not None else None
        self.max_attempts = max_attempts
        self.embedded = embedded
        self.chores = chores
        self._group = GroupCommit(self._write, self._created)

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
            regions = tuple(r.name for r in settings.topology.regions) if settings.topology else ()
            return cls(
                db,
                redis=redis,
                keys=keys,
                max_attempts=settings.jobs_max_attempts,
                chores=build_chores(settings, db, redis=redis, keys=keys, store=store),
                region=settings.home_region,
                regions=regions,
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
        region: str | None = None,
    ) -> tuple[Job, bool]:
        """Queue a job (in `region` if it is a known one, else this process's); with an
        idempotency key already used by this owner, the existing job instead. Returns
        (job, created)."""
        if not KIND.match(kind):
            raise ValueError(f"invalid job kind {kind!r}")
        new = repo.NewJob(
            kind=kind,
            payload=payload,
            owner_id=owner_id,
            priority=Priority.parse(priority),
            idempotency_key=idempotency_key,
            max_attempts=max_attempts or self.max_attempts,
            region=region if region in self.regions else self.region,
        )
        return await self._group.submit(new)

    async def _write(self, jobs: list[repo.NewJob]) -> list[tuple[Job, bool]]:
        """One batch of submissions (batch.py): one INSERT, in one transaction."""

        def work() -> list[tuple[Job, bool]]:
            with self.db.engine.begin() as conn:
                return repo.create_jobs(conn, jobs)

        return await asyncio.to_thread(work)

    async def _created(self, jobs: list[Job]) -> None:
        """A batch's new jobs are committed: publish them (one round trip), or wake the
        embedded worker."""
        if self.queue is not None:
            await self._publish(jobs)
        elif self.embedded is not None:
            self.embedded.wake()

    async def _publish(self, jobs: list[Job]) -> None:
        assert self.queue is not None
        try:
            await self.queue.publish_many(
                [(j.id, j.kind, Priority(j.priority), j.region or self.region) for j in jobs]
            )
        except (RedisError, OSError) as exc:  # the rows are committed: the reconciler has them
            log.warning(
                "jobs stored but not published; the reconciler will publish them",
                extra={"jobs": [j.id for j in jobs][:20], "count": len(jobs), "error": str(exc)},
            )

    async def get(
        self, job_id: str, owner_id: str = "", *, session: SessionFactory | None = None
    ) -> Job | None:
        """The job, if it exists and belongs to `owner_id` (else None: ids do not leak).

        `session` (default: the primary's) may be the read replica's, for a status poll
        that tolerates its lag (db/replica.py `Reads`).
        """
        opened = session or self.db.session

        def read() -> Job | None:
            with opened() as tx:
                return repo.get_job(tx, job_id)

        job = await asyncio.to_thread(read)
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

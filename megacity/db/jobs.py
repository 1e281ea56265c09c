"""Jobs: create (idempotently), read, cancel, claim, lease, and record an attempt's end.

The row is the source of truth; a queue (Redis Streams, or this table itself in the
embedded mode) only says "look at job X". Every write a worker makes is conditional on
`status = 'running' AND attempts = <its attempt>`, so a worker whose job was taken over
(its lease ran out) can never record anything: one result per job, whoever ran it.

The functions a job's life goes through (create, claim, lease, record) are single
conditional statements that take a Session or a Connection alike: each is correct as a
transaction of its own, so the queue runs them in autocommit on PostgreSQL — one round
trip and one commit per state change, no row lock held across round trips.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from megacity.db.models import Job, utcnow

Executor = Session | Connection
JOBS = cast(Table, Job.__table__)
_CLAIM_TRIES = 3  # a row that changes between our two statements: look again, this often


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Priority(enum.IntEnum):
    """GPU priority: lower value first. Stored as the integer, shown by name."""

    HIGH = 0
    NORMAL = 1
    LOW = 2

    @classmethod
    def parse(cls, value: str | int | Priority) -> Priority:
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError(f"unknown priority {value!r}: use high, normal or low") from None
        return cls(value)

    @property
    def label(self) -> str:
        return self.name.lower()


class Claim(enum.Enum):
    """What `claim_job` found: run it, or what the queue should do with the message."""

    CLAIMED = "claimed"  # this worker runs attempt `job.attempts` now
    DONE = "done"  # missing, or already finished / cancelled: drop the message
    NOT_DUE = "not_due"  # queued, backoff not over: deliver again at job.available_at
    BUSY = "busy"  # another worker holds a live lease: leave the message alone
    EXHAUSTED = "exhausted"  # its last attempt's worker died: now failed, dead-letter it


@dataclass(frozen=True, slots=True)
class Claimed:
    claim: Claim
    job: Job | None


def new_job_id() -> str:
    return uuid.uuid4().hex


def create_job(
    executor: Executor,
    *,
    kind: str,
    payload: Any,
    owner_id: str = "",
    priority: Priority = Priority.NORMAL,
    idempotency_key: str | None = None,
    max_attempts: int = 3,
    now: datetime | None = None,
) -> tuple[Job, bool]:
    """A new queued job, or the owner's existing one with this idempotency key; (job, created).

    One INSERT; with a key, ON CONFLICT DO NOTHING (a concurrent twin waits for the first
    to commit, then finds nothing to insert and reads the first's row).
    """
    now = now or utcnow()
    values = _new_row(NewJob(kind, payload, owner_id, priority, idempotency_key, max_attempts), now)
    if idempotency_key is None:
        executor.execute(JOBS.insert().values(values))
        return Job(**values), True
    bind = executor if isinstance(executor, Connection) else executor.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    added = executor.execute(
        dialect.insert(JOBS)
        .values(values)
        .on_conflict_do_nothing(index_elements=["owner_id", "idempotency_key"])
        .returning(JOBS.c.id)
    ).first()
    if added is not None:
        return Job(**values), True
    existing = find_by_key(executor, owner_id, idempotency_key)
    if existing is None:  # the conflicting row vanished: jobs are never deleted, so a bug
        raise RuntimeError(f"idempotency key {idempotency_key!r} conflicts with no row")
    return existing, False


@dataclass(frozen=True, slots=True)
class NewJob:
    """One submission, as `create_jobs` takes it."""

    kind: str
    payload: Any
    owner_id: str = ""
    priority: Priority = Priority.NORMAL
    idempotency_key: str | None = None
    max_attempts: int = 3
    region: str | None = None  # whose workers run it (None: the publisher's region)


def _new_row(new: NewJob, now: datetime) -> dict[str, Any]:
    return {
        "id": new_job_id(),
        "kind": new.kind,
        "priority": int(new.priority),
        "status": JobStatus.QUEUED.value,
        "owner_id": new.owner_id,
        "idempotency_key": new.idempotency_key,
        "payload": new.payload,
        "result": None,
        "error": None,
        "progress": 0.0,
        "attempts": 0,
        "max_attempts": new.max_attempts,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
        "available_at": now,
        "region": new.region,
    }


def create_jobs(
    executor: Executor, jobs: list[NewJob], *, now: datetime | None = None
) -> list[tuple[Job, bool]]:
    """`create_job` for many submissions at once (group commit): (job, created) for each, in order.

    One multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING id, then one SELECT for the
    rows whose idempotency key was taken already; run it in one transaction. Submissions
    sharing an (owner, key) within `jobs` share one row: the first creates it (or finds
    it), the others get it with created=False.
    """
    if not jobs:
        return []
    now = now or utcnow()
    rows: list[dict[str, Any]] = []
    first: dict[tuple[str, str], int] = {}  # (owner, key) -> index in rows
    slot: list[int] = []  # for each submission, its row in `rows`
    twins: set[int] = set()  # submissions that repeat an earlier (owner, key)
    for n, new in enumerate(jobs):
        key = (new.owner_id, new.idempotency_key) if new.idempotency_key is not None else None
        if key is not None and key in first:
            slot.append(first[key])
            twins.add(n)
            continue
        if key is not None:
            first[key] = len(rows)
        slot.append(len(rows))
        rows.append(_new_row(new, now))
    bind = executor if isinstance(executor, Connection) else executor.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    added = {
        row_id
        for (row_id,) in executor.execute(
            dialect.insert(JOBS)
            .on_conflict_do_nothing(index_elements=["owner_id", "idempotency_key"])
            .returning(JOBS.c.id),
            rows,  # executemany with RETURNING: SQLAlchemy sends one multi-row INSERT
        )
    }
    found: list[tuple[Job, bool]] = [(Job(**r), True) for r in rows]
    taken = [(r["owner_id"], r["idempotency_key"]) for r in rows if r["id"] not in added]
    if taken:
        existing = {
            (job.owner_id, job.idempotency_key): job
            for job in (
                Job(**row._mapping)
                for row in executor.execute(
                    select(*JOBS.c).where(
                        tuple_(JOBS.c.owner_id, JOBS.c.idempotency_key).in_(taken)
                    )
                )
            )
        }
        for i, r in enumerate(rows):
            if r["id"] in added:
                continue
            job = existing.get((r["owner_id"], r["idempotency_key"]))
            if job is None:  # jobs are never deleted: a bug
                raise RuntimeError(
                    f"idempotency key {r['idempotency_key']!r} conflicts with no row"
                )
            found[i] = (job, False)
    return [(found[s][0], found[s][1] and n not in twins) for n, s in enumerate(slot)]


def find_by_key(executor: Executor, owner_id: str, idempotency_key: str) -> Job | None:
    return _one(
        executor, and_(JOBS.c.owner_id == owner_id, JOBS.c.idempotency_key == idempotency_key)
    )


def _one(executor: Executor, where: Any) -> Job | None:
    """The row matching `where`, read afresh, as a detached Job."""
    row = executor.execute(select(*JOBS.c).where(where)).first()
    return Job(**row._mapping) if row is not None else None


def get_job(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def cancel_job(session: Session, job_id: str, *, now: datetime | None = None) -> Job | None:
    """Cancel a queued job; returns the row as it is afterwards (check its status)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.CANCELLED.value, finished_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return _fresh(session, job_id)


def claim_job(
    executor: Executor, job_id: str, *, lease_s: float, now: datetime | None = None
) -> Claimed:
    """Start the next attempt of `job_id` if it is due (the Redis worker's check per message).

    The common case is one conditional UPDATE ... RETURNING; only when it matches nothing
    is the row read to say why (and a dead worker's last attempt failed, conditionally).
    """
    now = now or utcnow()
    job: Job | None = None
    for _ in range(_CLAIM_TRIES):
        row = executor.execute(
            update(JOBS)
            .where(
                JOBS.c.id == job_id,
                JOBS.c.available_at <= now,
                or_(
                    JOBS.c.status == JobStatus.QUEUED.value,
                    and_(
                        JOBS.c.status == JobStatus.RUNNING.value,
                        JOBS.c.attempts < JOBS.c.max_attempts,
                    ),
                ),
            )
            .values(
                status=JobStatus.RUNNING.value,
                attempts=JOBS.c.attempts + 1,
                started_at=now,
                available_at=now + timedelta(seconds=lease_s),
            )
            .returning(*JOBS.c)
        ).first()
        if row is not None:
            return Claimed(Claim.CLAIMED, Job(**row._mapping))
        job = _one(executor, JOBS.c.id == job_id)
        if job is None or job.status in TERMINAL:
            return Claimed(Claim.DONE, job)
        if job.available_at > now:
            return Claimed(Claim.NOT_DUE if job.status == JobStatus.QUEUED else Claim.BUSY, job)
        if job.status == JobStatus.RUNNING and job.attempts >= job.max_attempts:
            failed = _worker_lost(executor, job, now)
            if failed is not None:
                return Claimed(Claim.EXHAUSTED, failed)
        # The row changed between the two statements (became due, or was taken): again.
    return Claimed(Claim.BUSY, job)


def _worker_lost(executor: Executor, job: Job, now: datetime) -> Job | None:
    """Fail a job whose last attempt's lease ran out; None if the row changed meanwhile."""
    err = error("worker_lost", f"the worker of attempt {job.attempts} stopped answering")
    row = executor.execute(
        update(JOBS)
        .where(
            JOBS.c.id == job.id,
            JOBS.c.status == JobStatus.RUNNING.value,
            JOBS.c.attempts == job.attempts,
            JOBS.c.available_at <= now,
        )
        .values(status=JobStatus.FAILED.value, error=err, finished_at=now)
        .returning(*JOBS.c)
    ).first()
    return Job(**row._mapping) if row is not None else None


def claim_next(
    session: Session, kinds: list[str] | None, *, lease_s: float, now: datetime | None = None
) -> Job | None:
    """The next due job (highest priority, oldest first), started; the embedded queue's read.

    On PostgreSQL, FOR UPDATE SKIP LOCKED lets workers in many processes claim side by
    side; on SQLite every transaction already holds the write lock (BEGIN IMMEDIATE).
    """
    now = now or utcnow()
    while True:
        query = select(Job).where(
            Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
            Job.available_at <= now,
        )
        if kinds is not None:
            query = query.where(Job.kind.in_(kinds))
        query = query.order_by(Job.priority, Job.available_at).limit(1)
        job = session.scalars(query.with_for_update(skip_locked=True)).first()
        if job is None:
            return None
        if _start(session, job, now, lease_s) is Claim.CLAIMED:
            return job
        # A dead worker's last attempt: now failed; look for another.


@dataclass(frozen=True, slots=True)
class Waiting:
    """A job that should be in a queue: queued and due, or running on a lease that ran out."""

    id: str
    kind: str
    priority: Priority
    available_at: datetime
    region: str | None = None


def waiting_since(
    executor: Executor, before: datetime, *, after: Waiting | None = None, limit: int = 500
) -> list[Waiting]:
    """Jobs waiting since before `before`, oldest first, from just past `after` (paging)."""
    query = select(Job.id, Job.kind, Job.priority, Job.available_at, Job.region).where(
        Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
        Job.available_at <= before,
    )
    if after is not None:
        query = query.where(
            (Job.available_at > after.available_at)
            | ((Job.available_at == after.available_at) & (Job.id > after.id))
        )
    query = query.order_by(Job.available_at, Job.id).limit(limit)
    return [Waiting(i, k, Priority(p), at, r) for i, k, p, at, r in executor.execute(query)]


def _start(session: Session, job: Job, now: datetime, lease_s: float) -> Claim:
    if job.status == JobStatus.RUNNING and job.attempts >= job.max_attempts:
        job.status = JobStatus.FAILED.value
        job.error = error("worker_lost", f"the worker of attempt {job.attempts} stopped answering")
        job.finished_at = now
        session.flush()
        return Claim.EXHAUSTED
    job.status = JobStatus.RUNNING.value
    job.attempts += 1
    job.started_at = now
    job.available_at = now + timedelta(seconds=lease_s)
    session.flush()
    return Claim.CLAIMED


def extend_lease(executor: Executor, job_id: str, attempt: int, until: datetime) -> bool:
    """Keep a running attempt's lease alive; False if the job is no longer ours."""
    return _running(executor, job_id, attempt, available_at=until)


def set_progress(executor: Executor, job_id: str, attempt: int, progress: float) -> bool:
    return _running(executor, job_id, attempt, progress=min(1.0, max(0.0, progress)))


def succeed(
    executor: Executor, job_id: str, attempt: int, result: Any, *, now: datetime | None = None
) -> bool:
    """Record the result of `attempt`; False (nothing written) if the job is no longer ours."""
    return _running(
        executor,
        job_id,
        attempt,
        status=JobStatus.SUCCEEDED.value,
        result=result,
        error=None,
        progress=1.0,
        finished_at=now or utcnow(),
    )


def fail(
    executor: Executor,
    job_id: str,
    attempt: int,
    err: dict[str, str],
    *,
    now: datetime | None = None,
) -> bool:
    """The job failed for good (attempts used up, or a permanent error)."""
    return _running(
        executor,
        job_id,
        attempt,
        status=JobStatus.FAILED.value,
        error=err,
        finished_at=now or utcnow(),
    )


def retry_at(
    executor: Executor, job_id: str, attempt: int, err: dict[str, str], when: datetime
) -> bool:
    """Back to the queue after a failed attempt, due again at `when` (the backoff)."""
    return _running(
        executor, job_id, attempt, status=JobStatus.QUEUED.value, error=err, available_at=when
    )


def release(executor: Executor, job_id: str, attempt: int, *, now: datetime | None = None) -> bool:
    """Back to the queue at once, the attempt not counted (a worker shutting down)."""
    return _running(
        executor,
        job_id,
        attempt,
        status=JobStatus.QUEUED.value,
        attempts=attempt - 1,
        available_at=now or utcnow(),
    )


def _running(executor: Executor, job_id: str, attempt: int, **values: Any) -> bool:
    done = executor.execute(
        update(JOBS)
        .where(
            JOBS.c.id == job_id,
            JOBS.c.status == JobStatus.RUNNING.value,
            JOBS.c.attempts == attempt,
        )
        .values(**values)
    )
    return bool(getattr(done, "rowcount", 0) == 1)


def _fresh(session: Session, job_id: str) -> Job | None:
    return session.scalars(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    ).first()


def error(code: str, message: str) -> dict[str, str]:
    """The JSON a failed job carries: {"code", "message"} (message capped at 2000 chars)."""
    return {"code": code, "message": message[:2000]}

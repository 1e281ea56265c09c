"""Run one claimed attempt of a job and record how it ended, for either kind of worker.

The attempt's lease is renewed while the handler runs (every third of the lease, and
the Redis message's idle time with it), so a job may run far longer than the lease
without being taken over; if renewal finds the job taken over anyway (this worker was
presumed dead), the handler is cancelled and nothing is recorded. An attempt that runs
past its time limit is cancelled and fails with the code ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.models import Job, utcnow
from megacity.jobs.handlers import Handlers, JobContext, PermanentJobError

log = logging.getLogger("megacity.jobs")
T = TypeVar("T")
_CANCEL_GRACE_S = 5.0  # how long a timed-out handler gets to unwind after its cancellation


@dataclass(frozen=True, slots=True)
class Policy:
    """Timing of attempts, in seconds: lease (visibility timeout), backoff base and cap, and
    the default limit on one attempt (a kind may set its own, `Handlers.register`)."""

    lease_s: float = 60.0
    backoff_s: float = 2.0
    backoff_max_s: float = 300.0
    timeout_s: float = 600.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1, 2, …): doubling, capped."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** max(0, attempt - 1)))


class HandlerTimeout(Exception):
    """The attempt ran past its time limit (its handler has been cancelled)."""


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"  # back in the queue, due at `available_at`
    FAILED = "failed"  # for good: dead-letter it
    RELEASED = "released"  # given back unfinished (shutdown): queue it again now
    SUPERSEDED = "superseded"  # another worker took the job over: touch nothing


@dataclass(frozen=True, slots=True)
class Finished:
    outcome: Outcome
    available_at: datetime | None = None
    error: dict[str, str] | None = None


async def in_tx(db: Database, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(session, *args, **kwargs)` in one transaction, on a worker thread."""

    def work() -> T:
        with db.session() as session:
            return fn(session, *args, **kwargs)

    return await asyncio.to_thread(work)


async def in_autocommit(db: Database, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(connection, *args, **kwargs)` on a worker thread, each statement committed alone.

    For the job's state changes (db/jobs.py), each one conditional statement: on
    PostgreSQL in autocommit, which saves the BEGIN and COMMIT round trips; SQLite runs
    them in a transaction (its writes serialise on the file anyway).
    """

    def work() -> T:
        if db.dialect != "postgresql":
            with db.engine.begin() as conn:
                return fn(conn, *args, **kwargs)
        with db.engine.connect() as conn:
            return fn(conn.execution_options(isolation_level="AUTOCOMMIT"), *args, **kwargs)

    return await asyncio.to_thread(work)


async def run_job(
    db: Database,
    handlers: Handlers,
    job: Job,
    policy: Policy,
    *,
    touch: Callable[[], Awaitable[None]] | None = None,
) -> Finished:
    """Run the claimed attempt `job.attempts` of `job` and record its end in the row.

    `touch` is called with each lease renewal (the Redis worker resets the message's
    idle time there). Cancelling this coroutine releases the job (shutdown).
    """
    attempt = job.attempts
    handler = handlers.get(job.kind)
    if handler is None:
        err = repo.error("unknown_kind", f"no handler for job kind {job.kind!r}")
        return await _fail(db, job, attempt, err)

    async def report(fraction: float) -> None:
        await in_autocommit(db, repo.set_progress, job.id, attempt, fraction)

    ctx = JobContext(job.id, job.kind, job.payload, attempt, job.max_attempts, report)
    limit_s = handlers.timeout(job.kind) or policy.timeout_s
    work = asyncio.ensure_future(handler(ctx))
    keeper = asyncio.ensure_future(_keep_lease(db, job.id, attempt, policy, work, touch))
    try:
        try:
            result = await _within(work, limit_s)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
    except asyncio.CancelledError:
        if keeper.done() and not keeper.cancelled() and keeper.result() is False:
            log.warning("job taken over by another worker", extra={"job": job.id})
            return Finished(Outcome.SUPERSEDED)
        if not work.done():
            work.cancel()
        if await in_autocommit(db, repo.release, job.id, attempt):
            return Finished(Outcome.RELEASED)
        return Finished(Outcome.SUPERSEDED)
    except Exception as exc:
        return await _attempt_failed(db, job, attempt, policy, exc)
    return await _succeeded(db, job, attempt, result)


async def _within(work: asyncio.Future[T], limit_s: float) -> T:
    """`work`'s result, or HandlerTimeout once `limit_s` has passed (and `work` cancelled).

    A handler that ignores its cancellation is left behind after a short grace: the
    attempt has failed either way, and its lease is no longer renewed.
    """
    done, _ = await asyncio.wait({work}, timeout=limit_s)
    if done:
        return work.result()  # CancelledError too, when the lease keeper cancelled it
    work.cancel()
    _, late = await asyncio.wait({work}, timeout=_CANCEL_GRACE_S)
    if late:
        log.error("job handler ignores cancellation; abandoning it", extra={"limit_s": limit_s})
    raise HandlerTimeout(f"the attempt ran past its {limit_s:g} s timeout")


async def _attempt_failed(
    db: Database, job: Job, attempt: int, policy: Policy, exc: Exception
) -> Finished:
    """A failed attempt: for good (permanent, or the last), else retried after a backoff."""
    if isinstance(exc, PermanentJobError):
        return await _fail(db, job, attempt, repo.error(exc.code, str(exc)))
    if isinstance(exc, HandlerTimeout):
        err = repo.error("timeout", str(exc))
    else:
        err = repo.error("handler_error", f"{type(exc).__name__}: {exc}")
    if attempt >= job.max_attempts:
        return await _fail(db, job, attempt, err)
    when = utcnow() + timedelta(seconds=policy.backoff(attempt))
    if await in_autocommit(db, repo.retry_at, job.id, attempt, err, when):
        log.info(
            "job attempt failed; retrying",
            extra={"job": job.id, "attempt": attempt, "code": err["code"]},
        )
        return Finished(Outcome.RETRY, when, err)
    return Finished(Outcome.SUPERSEDED)


async def _succeeded(db: Database, job: Job, attempt: int, result: Any) -> Finished:
    try:
        stored = json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        return await _fail(db, job, attempt, repo.error("bad_result", f"result is not JSON: {exc}"))
    if await in_autocommit(db, repo.succeed, job.id, attempt, stored):
        return Finished(Outcome.SUCCEEDED)
    return Finished(Outcome.SUPERSEDED)


async def _fail(db: Database, job: Job, attempt: int, err: dict[str, str]) -> Finished:
    if await in_autocommit(db, repo.fail, job.id, attempt, err):
        log.warning("job failed", extra={"job": job.id, "kind": job.kind, "code": err["code"]})
        return Finished(Outcome.FAILED, error=err)
    return Finished(Outcome.SUPERSEDED)


async def _keep_lease(
    db: Database,
    job_id: str,
    attempt: int,
    policy: Policy,
    work: asyncio.Future[Any],
    touch: Callable[[], Awaitable[None]] | None,
) -> bool:
    """Renew the lease every third of it; on losing the job, cancel the handler (False)."""
    every = policy.lease_s / 3
    while True:
        await asyncio.sleep(every)
        until = utcnow() + timedelta(seconds=policy.lease_s)
        try:
            ours = await in_autocommit(db, repo.extend_lease, job_id, attempt, until)
            if ours and touch is not None:
                await touch()
        except Exception:  # a blip: the lease has two more renewals before it runs out
            log.warning("lease renewal failed", extra={"job": job_id}, exc_info=True)
            continue
        if not ours:
            work.cancel()
            return False

"""The embedded worker (no Redis): runs jobs from the table, and after a restart resumes
those still queued and those whose worker's lease ran out. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.jobs import EmbeddedWorker, JobService, JobStatus, Policy
from megacity.jobs.testing import wait_for_jobs
from tests.jobs.handlers import build_with

POLICY = Policy(lease_s=5.0, backoff_s=0.05)


def test_restart_resumes_queued_and_lease_expired_jobs(db: Database) -> None:
    # Before the "crash": two jobs queued, one running under a lease that has run out,
    # one running under a live lease (its worker is elsewhere and alive).
    service = JobService(db)  # no worker: the router is down
    queued = [asyncio.run(service.submit("record", {"n": i}))[0].id for i in range(2)]
    with db.session() as s:
        expired, _ = repo.create_job(s, kind="record", payload={"n": 2})
        live, _ = repo.create_job(s, kind="record", payload={"n": 3})
    with db.session() as s:
        assert repo.claim_job(s, expired.id, lease_s=-10).claim is repo.Claim.CLAIMED  # ran out
        repo.claim_job(s, live.id, lease_s=60)

    async def restart() -> None:
        worker = EmbeddedWorker(db, build_with(None), policy=POLICY, concurrency=2, poll_s=0.05)
        restarted = JobService(db, embedded=worker)
        await restarted.start()
        try:
            await asyncio.to_thread(wait_for_jobs, db, [*queued, expired.id], 15)
            fresh, _ = await restarted.submit("record", {"n": 4}, idempotency_key="k")
            again, created = await restarted.submit("record", {"n": 5}, idempotency_key="k")
            assert again.id == fresh.id and not created
            await asyncio.to_thread(wait_for_jobs, db, [fresh.id], 15)
        finally:
            await restarted.stop()

    asyncio.run(restart())
    with db.session() as s:
        rows = {j: repo.get_job(s, j) for j in [*queued, expired.id, live.id]}
    assert all(rows[j].status == JobStatus.SUCCEEDED for j in [*queued, expired.id])  # type: ignore[union-attr]
    assert rows[expired.id].attempts == 2  # type: ignore[union-attr]
    assert rows[live.id].status == JobStatus.RUNNING  # type: ignore[union-attr]


def test_a_poison_job_fails_after_its_attempts(db: Database) -> None:
    async def run() -> str:
        worker = EmbeddedWorker(db, build_with(None), policy=POLICY, poll_s=0.02)
        service = JobService(db, embedded=worker, max_attempts=3)
        await service.start()
        try:
            job, _ = await service.submit("fail", {"n": 9})
            await asyncio.to_thread(wait_for_jobs, db, [job.id], 15)
            return job.id
        finally:
            await service.stop()

    job_id = asyncio.run(run())
    with db.session() as s:
        row = repo.get_job(s, job_id)
    assert row is not None and row.status == JobStatus.FAILED and row.attempts == 3
    assert row.error == {"code": "handler_error", "message": "RuntimeError: poison 9"}

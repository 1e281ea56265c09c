"""The jobs table: idempotent creation, claims by priority, leases, conditional results."""

from __future__ import annotations

import threading
from datetime import timedelta

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.jobs import Claim, JobStatus, Priority
from megacity.db.models import utcnow


def _create(db: Database, **kwargs: object) -> str:
    with db.session() as s:
        job, created = repo.create_job(s, kind=kwargs.pop("kind", "noop"), payload={}, **kwargs)  # type: ignore[arg-type]
        assert created
        return job.id


def test_same_idempotency_key_gives_one_job(db: Database) -> None:
    with db.session() as s:
        first, created = repo.create_job(
            s, kind="noop", payload={}, owner_id="u1", idempotency_key="k"
        )
    with db.session() as s:
        again, created_again = repo.create_job(
            s, kind="noop", payload={"other": 1}, owner_id="u1", idempotency_key="k"
        )
    with db.session() as s:
        other_owner, created_other = repo.create_job(
            s, kind="noop", payload={}, owner_id="u2", idempotency_key="k"
        )
    assert created and not created_again and created_other
    assert again.id == first.id and again.payload == {}
    assert other_owner.id != first.id


def test_racing_submissions_with_one_key_create_one_job(db: Database) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(4)

    def submit() -> None:
        barrier.wait()
        with db.session() as s:
            job, _ = repo.create_job(
                s, kind="noop", payload={}, owner_id="u", idempotency_key="same"
            )
            ids.append(job.id)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(ids) == 4 and len(set(ids)) == 1


def test_claim_next_takes_high_priority_first_then_oldest(db: Database) -> None:
    low = _create(db, priority=Priority.LOW)
    normal = _create(db)
    high = _create(db, priority=Priority.HIGH)
    order = []
    for _ in range(3):
        with db.session() as s:
            job = repo.claim_next(s, None, lease_s=60)
            assert job is not None and job.status == JobStatus.RUNNING and job.attempts == 1
            order.append(job.id)
    assert order == [high, normal, low]
    with db.session() as s:
        assert repo.claim_next(s, None, lease_s=60) is None  # all leased


def test_an_expired_lease_is_taken_over_and_the_old_attempt_records_nothing(db: Database) -> None:
    job_id = _create(db, max_attempts=2)
    with db.session() as s:
        assert repo.claim_job(s, job_id, lease_s=60).claim is Claim.CLAIMED
    with db.session() as s:
        assert repo.claim_job(s, job_id, lease_s=60).claim is Claim.BUSY
    later = utcnow() + timedelta(seconds=61)
    with db.session() as s:
        took = repo.claim_job(s, job_id, lease_s=60, now=later)
        assert took.claim is Claim.CLAIMED and took.job is not None and took.job.attempts == 2
    with db.session() as s:
        assert not repo.succeed(s, job_id, 1, {"by": "first"})  # superseded
        assert repo.succeed(s, job_id, 2, {"by": "second"})
        assert not repo.succeed(s, job_id, 2, {"by": "twice"})
    with db.session() as s:
        row = repo.get_job(s, job_id)
        assert row is not None and row.result == {"by": "second"} and row.progress == 1.0
        assert repo.claim_job(s, job_id, lease_s=60).claim is Claim.DONE


def test_a_dead_last_attempt_fails_the_job(db: Database) -> None:
    job_id = _create(db, max_attempts=1)
    with db.session() as s:
        assert repo.claim_job(s, job_id, lease_s=0).claim is Claim.CLAIMED
    with db.session() as s:
        took = repo.claim_job(s, job_id, lease_s=60, now=utcnow() + timedelta(seconds=1))
        assert took.claim is Claim.EXHAUSTED
        assert took.job is not None and took.job.status == JobStatus.FAILED
        assert took.job.error is not None and took.job.error["code"] == "worker_lost"


def test_cancel_only_a_queued_job(db: Database) -> None:
    queued, running = _create(db), _create(db)
    with db.session() as s:
        repo.claim_job(s, running, lease_s=60)
    with db.session() as s:
        row = repo.cancel_job(s, queued)
        assert row is not None and row.status == JobStatus.CANCELLED
        row = repo.cancel_job(s, running)
        assert row is not None and row.status == JobStatus.RUNNING
        assert repo.cancel_job(s, "0" * 32) is None
    with db.session() as s:
        assert repo.claim_job(s, queued, lease_s=60).claim is Claim.DONE

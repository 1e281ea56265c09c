"""Group commit of submissions (jobs/batch.py): concurrent submits share one INSERT and one
publish, each caller still gets its own (job, created), idempotency holds inside a batch,
and a bad submission fails its own caller only. Real Redis; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.jobs import Priority
from megacity.db.models import Job
from megacity.jobs import JobService, redis_client
from megacity.jobs.runner import in_tx
from tests.jobs.conftest import RedisSpace


def _count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)


def _batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every batch written."""
    sizes: list[int] = []
    create_jobs = repo.create_jobs

    def spy(executor: Any, jobs: list[repo.NewJob], **kwargs: Any) -> list[tuple[Job, bool]]:
        sizes.append(len(jobs))
        return create_jobs(executor, jobs, **kwargs)

    monkeypatch.setattr(repo, "create_jobs", spy)
    return sizes


async def _messages(service: JobService, kind: str) -> list[str]:
    assert service.queue is not None
    stream = service.queue.keys.stream(Priority.NORMAL, kind)
    entries: Any = await service.queue.redis.xrange(stream)
    return [fields["job"] for _, fields in entries]


def test_200_concurrent_submits_give_200_rows_and_200_messages(
    db: Database, redis_space: RedisSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _batch_sizes(monkeypatch)

    async def body() -> None:
        service = JobService(db, redis=redis_client(redis_space.url), keys=redis_space.keys)
        try:
            answers = await asyncio.gather(*(service.submit("noop", {"i": i}) for i in range(200)))
            assert all(created for _, created in answers)
            ids = [job.id for job, _ in answers]
            assert len(set(ids)) == 200
            assert [job.payload for job, _ in answers] == [{"i": i} for i in range(200)]
            messages = await _messages(service, "noop")
            assert Counter(messages) == Counter(ids)  # each job published once
            for job_id, (job, _) in zip(ids, answers, strict=True):
                row = await in_tx(db, repo.get_job, job_id)
                assert row is not None and row.payload == job.payload
        finally:
            await service.stop()

    asyncio.run(body())
    assert _count(db) == 200
    assert sum(sizes) == 200 and len(sizes) < 200  # grouped (at most 256 per batch)
    assert max(sizes) <= 256


def test_one_idempotency_key_twice_in_one_batch_gives_one_job(
    db: Database, redis_space: RedisSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _batch_sizes(monkeypatch)

    async def body() -> None:
        service = JobService(db, redis=redis_client(redis_space.url), keys=redis_space.keys)
        try:
            first, second, other, later = await asyncio.gather(
                service.submit("noop", {"n": 1}, owner_id="u", idempotency_key="k"),
                service.submit("noop", {"n": 2}, owner_id="u", idempotency_key="k"),
                service.submit("noop", {"n": 3}, owner_id="v", idempotency_key="k"),
                service.submit("noop", {"n": 4}, owner_id="u", idempotency_key="k"),
            )
            assert sizes == [4]  # all in one batch
            assert first[0].id == second[0].id == later[0].id != other[0].id
            assert [first[1], second[1], other[1], later[1]] == [True, False, True, False]
            assert second[0].payload == {"n": 1}  # the first submission's job
            # A batch that meets a key committed earlier: the existing job, not created.
            again, extra = await asyncio.gather(
                service.submit("noop", {"n": 5}, owner_id="u", idempotency_key="k"),
                service.submit("noop", {"n": 6}, owner_id="u", idempotency_key="other"),
            )
            assert again == (again[0], False) and again[0].id == first[0].id
            assert extra[1]
            assert Counter(await _messages(service, "noop")) == Counter(
                [first[0].id, other[0].id, extra[0].id]
            )
        finally:
            await service.stop()

    asyncio.run(body())
    assert _count(db) == 3


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_bad_submission_fails_only_its_own_caller(db: Database, redis_space: RedisSpace) -> None:
    async def body() -> None:
        service = JobService(db, redis=redis_client(redis_space.url), keys=redis_space.keys)
        try:
            bad_owner = "x" * 1000  # longer than the column: PostgreSQL refuses the INSERT
            answers = await asyncio.gather(
                service.submit("noop", {"n": 1}),
                service.submit("noop", {"n": 2}, owner_id=bad_owner),
                service.submit("noop", {"n": 3}, idempotency_key="k"),
                service.submit("noop", {"n": 4}),
                return_exceptions=True,
            )
            assert isinstance(answers[1], DBAPIError), answers
            good = [a for i, a in enumerate(answers) if i != 1]
            assert all(isinstance(a, tuple) and a[1] for a in good), answers
            ids = sorted(a[0].id for a in good)  # type: ignore[index]
            assert sorted(await _messages(service, "noop")) == ids
            job, created = await service.submit("noop", {"n": 5}, idempotency_key="k")
            assert not created and job.id == answers[2][0].id  # type: ignore[index]
        finally:
            await service.stop()

    asyncio.run(body())
    assert _count(db) == 3


def test_submits_arriving_during_a_write_form_the_next_batch(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first submission is written at once (no waiting for company); those arriving
    while it is in flight go together next. Without Redis (the embedded path)."""
    sizes: list[int] = []
    release = threading.Event()
    create_jobs = repo.create_jobs

    def held(executor: Any, jobs: list[repo.NewJob], **kwargs: Any) -> list[tuple[Job, bool]]:
        sizes.append(len(jobs))
        if len(sizes) == 1:
            assert release.wait(10)
        return create_jobs(executor, jobs, **kwargs)

    monkeypatch.setattr(repo, "create_jobs", held)

    async def body() -> None:
        service = JobService(db)
        first = asyncio.ensure_future(service.submit("noop", {"n": 0}))
        while not sizes:
            await asyncio.sleep(0.005)
        rest = [asyncio.ensure_future(service.submit("noop", {"n": i})) for i in range(1, 11)]
        await asyncio.sleep(0.05)
        assert sizes == [1] and not first.done()
        release.set()
        answers = await asyncio.gather(first, *rest)
        assert sizes == [1, 10]
        assert [job.payload["n"] for job, _ in answers] == list(range(11))

    asyncio.run(body())
    assert _count(db) == 11

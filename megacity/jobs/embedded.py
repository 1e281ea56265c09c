"""EmbeddedWorker: jobs run in-process straight from the jobs table (no Redis configured).

The table is the queue: a conditional claim picks the next due job (highest priority,
oldest first; FOR UPDATE SKIP LOCKED on PostgreSQL, so several processes may share it).
Jobs still queued at shutdown, and running ones whose lease ran out (the process was
killed), are simply claimed again after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.models import Job
from megacity.jobs.handlers import Handlers
from megacity.jobs.runner import Policy, in_tx, run_job

log = logging.getLogger("megacity.jobs")


class EmbeddedWorker:
    """Runs up to `concurrency` jobs at once; polls every `poll_s`, or at once on `wake()`."""

    def __init__(
        self,
        db: Database,
        handlers: Handlers,
        *,
        policy: Policy,
        concurrency: int = 1,
        poll_s: float = 0.5,
        grace_s: float = 10.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.db = db
        self.handlers = handlers
        self.policy = policy
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.grace_s = grace_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A job was just queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def start(self) -> None:
        """Run in the background (the router's lifespan); `close()` stops it."""
        self._task = asyncio.create_task(self.run())

    async def close(self) -> None:
        self.stop()
        if self._task is not None:
            await self._task

    async def run(self) -> None:
        """Serve until `stop()`."""
        kinds = self.handlers.kinds
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    while len(self._running) < self.concurrency and not self._stopping.is_set():
                        job = await in_tx(
                            self.db, repo.claim_next, kinds, lease_s=self.policy.lease_s
                        )
                        if job is None:
                            break
                        task = asyncio.create_task(self._run(job))
                        self._running.add(task)
                        task.add_done_callback(self._done)
                except Exception:
                    log.exception("claiming a job failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
        finally:
            await self._shutdown()

    async def _run(self, job: Job) -> None:
        await run_job(self.db, self.handlers, job, self.policy)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free
        if not task.cancelled() and task.exception() is not None:
            log.error("job handling failed", exc_info=task.exception())

    async def _shutdown(self) -> None:
        running = list(self._running)
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=self.grace_s)
        for task in late:
            task.cancel()  # run_job puts the job back in the queue
        if late:
            await asyncio.wait(late, timeout=10)

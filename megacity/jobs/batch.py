"""Group commit of submissions: concurrent `submit` calls share one INSERT and one publish.

No added delay: the first submission in an idle service is written at once; those that
arrive while a write is in flight wait for it and then go together, as the next batch
(at most `max_batch`), in one transaction, followed by one `publish_many`. Each caller
is answered only once its row is committed (and its message published), with its own
(job, created). When a batch's write fails, its submissions are written again one by
one, so one bad submission (a value the database refuses) fails only its own caller.

One batch is in flight at a time per event loop; a service used from a new event loop
(tests running `asyncio.run` more than once) starts afresh there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from megacity.db.jobs import NewJob
from megacity.db.models import Job

log = logging.getLogger("megacity.jobs")

MAX_BATCH = 256

Write = Callable[[list[NewJob]], Awaitable[list[tuple[Job, bool]]]]
After = Callable[[list[Job]], Awaitable[None]]
_Waiter = tuple[NewJob, "asyncio.Future[tuple[Job, bool]]"]


class GroupCommit:
    """Batches `NewJob`s: `write` stores a batch (one transaction) and answers (job, created)
    for each in order; `after` gets the jobs it created (publish them, wake a worker)."""

    def __init__(self, write: Write, after: After, *, max_batch: int = MAX_BATCH) -> None:
        self._write = write
        self._after = after
        self.max_batch = max_batch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Waiter] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, new: NewJob) -> tuple[Job, bool]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop: what the old one held is gone with it
            self._loop, self._pending, self._flusher = loop, [], None
        answer: asyncio.Future[tuple[Job, bool]] = loop.create_future()
        self._pending.append((new, answer))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await answer

    async def _flush(self) -> None:
        batch: list[_Waiter] = []
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                batch = [(n, f) for n, f in batch if not f.done()]  # callers cancelled meanwhile
                if batch:
                    await self._one(batch)
                batch = []
        except BaseException:  # cancelled (the loop is closing): no waiter is left hanging
            for _, answer in batch + self._pending:
                answer.cancel()
            self._pending = []
            raise
        finally:
            if self._flusher is asyncio.current_task():
                self._flusher = None

    async def _one(self, batch: list[_Waiter]) -> None:
        try:
            done = await self._write([new for new, _ in batch])
        except Exception as exc:
            if len(batch) > 1:  # find the culprit: the others must not fail with it
                for waiter in batch:
                    await self._one([waiter])
                return
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        created = [job for job, new in done if new]
        if created:
            try:
                await self._after(created)
            except Exception:  # the rows are committed: the reconciler publishes them
                log.exception("jobs stored but their publication failed")
        for (_, answer), result in zip(batch, done, strict=True):
            if not answer.done():
                answer.set_result(result)

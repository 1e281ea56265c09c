"""Handlers: what runs a job of each kind. A registry is a plain object, passed in.

A handler is ``async def handler(ctx: JobContext) -> result`` where the result is
JSON-able. Raising `PermanentJobError` fails the job at once (bad payload); any other
exception fails the attempt, and the job is retried with backoff until its attempts
are used up. So does running past the kind's timeout (`register(..., timeout_s=)`, else
the worker's default `jobs_timeout_s`): the handler's task is cancelled and the attempt
fails with the code ``timeout``. Blocking work a handler hands to a thread cannot be
interrupted there: give such a library call its own timeout too.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

KIND = re.compile(r"^[a-z0-9_]{1,64}$")


class PermanentJobError(Exception):
    """A job that can never succeed (bad payload, missing input): no retry."""

    def __init__(self, message: str, *, code: str = "invalid_job") -> None:
        super().__init__(message)
        self.code = code


async def _no_progress(_: float) -> None:
    return None


@dataclass(slots=True)
class JobContext:
    """What a handler sees: its job's id, kind, payload and attempt, and a progress callback."""

    job_id: str
    kind: str
    payload: Any
    attempt: int
    max_attempts: int
    report: Callable[[float], Awaitable[None]] = field(default=_no_progress)

    async def progress(self, fraction: float) -> None:
        """Report progress, 0..1 (stored on the job row; clients poll it)."""
        await self.report(fraction)


Handler = Callable[[JobContext], Awaitable[Any]]


class Handlers:
    """kind → handler. Build one at start-up (see `default_handlers`) and pass it to workers."""

    def __init__(
        self,
        handlers: dict[str, Handler] | None = None,
        *,
        timeouts: dict[str, float] | None = None,
    ) -> None:
        self._handlers: dict[str, Handler] = {}
        self._timeouts: dict[str, float] = {}
        timeouts = dict(timeouts or {})
        for kind, handler in (handlers or {}).items():
            self.register(kind, handler, timeout_s=timeouts.pop(kind, None))
        if timeouts:
            raise ValueError(f"timeouts for job kind(s) without a handler: {sorted(timeouts)}")

    def register(self, kind: str, handler: Handler, *, timeout_s: float | None = None) -> None:
        """Serve `kind` with `handler`; `timeout_s` bounds one attempt (None: the default)."""
        if not KIND.match(kind):
            raise ValueError(f"invalid job kind {kind!r}: use a-z, 0-9 and _ (64 at most)")
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} already has a handler")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"job kind {kind!r}: timeout_s must be positive, not {timeout_s}")
        self._handlers[kind] = handler
        if timeout_s is not None:
            self._timeouts[kind] = float(timeout_s)

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def timeout(self, kind: str) -> float | None:
        """The kind's own limit on one attempt, in seconds (None: the worker's default)."""
        return self._timeouts.get(kind)

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def only(self, kinds: list[str]) -> Handlers:
        """The same handlers limited to `kinds` (a worker started with --kinds)."""
        unknown = sorted(set(kinds) - set(self._handlers))
        if unknown:
            raise ValueError(f"no handler for job kind(s): {', '.join(unknown)}")
        timeouts = {k: t for k, t in self._timeouts.items() if k in kinds}
        return Handlers({k: self._handlers[k] for k in kinds}, timeouts=timeouts)

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds)

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers


async def noop(ctx: JobContext) -> dict[str, Any]:
    """Does nothing and echoes the payload: for tests and the queue benchmark."""
    return {"echo": ctx.payload}


def default_handlers() -> Handlers:
    """The kinds this build can run (later: thumbnail, tts, dance_analyze)."""
    return Handlers({"noop": noop})

"""`megacity worker`: a worker process — the handlers, the database, Redis, and signals."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Callable

from megacity.config.settings import Settings
from megacity.db import Database
from megacity.jobs.embedded import EmbeddedWorker
from megacity.jobs.handlers import Handlers
from megacity.jobs.keys import Keys
from megacity.jobs.service import policy_from, redis_client
from megacity.jobs.worker import Worker

log = logging.getLogger("megacity.jobs")
DEFAULT_HANDLERS = "megacity.jobs.handlers:default_handlers"


def load_handlers(spec: str = DEFAULT_HANDLERS) -> Handlers:
    """Call `module:function` (no arguments) for the Handlers a worker serves."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--handlers {spec!r}: expected module:function")
    try:
        factory: Callable[[], Handlers] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--handlers {spec!r}: {exc}") from None
    handlers = factory()
    if not isinstance(handlers, Handlers):
        raise ValueError(f"--handlers {spec!r} returned {type(handlers).__name__}, not Handlers")
    return handlers


async def serve(settings: Settings, db: Database, handlers: Handlers, concurrency: int) -> None:
    """Run one worker until SIGTERM/SIGINT, then finish or release its jobs and return."""
    redis = None
    worker: Worker | EmbeddedWorker
    if settings.redis_url:
        redis = redis_client(settings.redis_url)
        worker = Worker(
            db,
            redis,
            handlers,
            keys=Keys(settings.jobs_key_prefix),
            policy=policy_from(settings),
            concurrency=concurrency,
            grace_s=settings.jobs_shutdown_grace_s,
        )
    else:  # no Redis: share the jobs table with the router (PostgreSQL: SKIP LOCKED)
        worker = EmbeddedWorker(
            db,
            handlers,
            policy=policy_from(settings),
            concurrency=concurrency,
            poll_s=settings.jobs_poll_interval_s,
            grace_s=settings.jobs_shutdown_grace_s,
        )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    log.info(
        "worker serving",
        extra={"kinds": handlers.kinds, "concurrency": concurrency, "redis": redis is not None},
    )
    try:
        await worker.run()
    finally:
        if redis is not None:
            await redis.aclose()

"""`megacity worker`: a worker process — the handlers, the database, Redis, and signals,
and the chores (chores.py): the reconciler with Redis, the retention sweep of the
object store."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from megacity.config.settings import Settings
from megacity.db import Database
from megacity.jobs.chores import build_chores
from megacity.jobs.embedded import EmbeddedWorker
from megacity.jobs.handlers import Handlers
from megacity.jobs.keys import Keys
from megacity.jobs.service import policy_from, redis_client
from megacity.jobs.worker import Worker

if TYPE_CHECKING:
    from megacity.storage.base import ObjectStore

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


async def serve(
    settings: Settings,
    db: Database,
    handlers: Handlers,
    concurrency: int,
    *,
    store: ObjectStore | None = None,
) -> None:
    """Run one worker until SIGTERM/SIGINT, then finish or release its jobs and return.

    The retention sweep runs on `store`, by default the one the settings describe (when
    `retention_sweep_interval_s` is not 0).
    """
    if store is None and settings.retention_sweep_interval_s > 0:
        from megacity.storage import build_object_store

        store = build_object_store(settings)
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    worker = _worker(settings, db, handlers, concurrency, redis)
    keys = Keys(settings.jobs_key_prefix)
    chores = build_chores(settings, db, redis=redis, keys=keys, store=store)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    log.info(
        "worker serving",
        extra={
            "kinds": handlers.kinds,
            "concurrency": concurrency,
            "redis": redis is not None,
            "region": settings.home_region,
            "chores": chores.names,
        },
    )
    chores.start()
    try:
        await worker.run()
    finally:
        await chores.stop()
        if redis is not None:
            await redis.aclose()


def _worker(
    settings: Settings, db: Database, handlers: Handlers, concurrency: int, redis: Redis | None
) -> Worker | EmbeddedWorker:
    if redis is not None:
        return Worker(
            db,
            redis,
            handlers,
            keys=Keys(settings.jobs_key_prefix),
            policy=policy_from(settings),
            concurrency=concurrency,
            grace_s=settings.jobs_shutdown_grace_s,
            region=settings.home_region,
            adopt_s=settings.jobs_region_adopt_s,
        )
    # No Redis: share the jobs table with the router (PostgreSQL: SKIP LOCKED).
    return EmbeddedWorker(
        db,
        handlers,
        policy=policy_from(settings),
        concurrency=concurrency,
        poll_s=settings.jobs_poll_interval_s,
        grace_s=settings.jobs_shutdown_grace_s,
    )

"""Handlers for the job tests, also loaded by worker processes (--handlers tests.jobs.handlers:build).

Each run is recorded in the Redis list {prefix}:test:runs as "<phase> <job> <pid>", so a
test can count how often a job started and finished, and where.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis.asyncio as aioredis

from megacity.jobs import Handlers, JobContext, default_handlers
from megacity.jobs.keys import Keys


def runs_key(prefix: str) -> str:
    Keys(prefix)  # validates it
    return "{" + prefix + "}:test:runs"


class Recorder:
    """Pushes run records to Redis (URL and prefix from the worker's environment)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)
        self.key = runs_key(prefix)

    async def note(self, phase: str, job_id: str) -> None:
        await self.redis.rpush(self.key, f"{phase} {job_id} {os.getpid()}")


def build_with(recorder: Recorder | None) -> Handlers:
    handlers = default_handlers()

    async def record(ctx: JobContext) -> dict[str, Any]:
        if recorder is not None:
            await recorder.note("start", ctx.job_id)
        await ctx.progress(0.5)
        await asyncio.sleep(float(ctx.payload.get("sleep_s", 0)))
        if recorder is not None:
            await recorder.note("end", ctx.job_id)
        return {"pid": os.getpid(), "n": ctx.payload.get("n")}

    async def fail(ctx: JobContext) -> None:
        raise RuntimeError(f"poison {ctx.payload.get('n')}")

    handlers.register("record", record)
    handlers.register("fail", fail)
    return handlers


def build() -> Handlers:
    """For worker processes: MEGACITY_REDIS_URL and MEGACITY_JOBS_KEY_PREFIX say where to record."""
    url = os.environ.get("MEGACITY_REDIS_URL")
    prefix = os.environ.get("MEGACITY_JOBS_KEY_PREFIX", "megacity:jobs")
    return build_with(Recorder(url, prefix) if url else None)

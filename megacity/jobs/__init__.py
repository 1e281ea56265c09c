"""Durable AI jobs: rows in the database, messages on Redis Streams (or none, embedded)."""

from __future__ import annotations

from megacity.db.jobs import JobStatus, Priority
from megacity.db.models import Job
from megacity.jobs.embedded import EmbeddedWorker
from megacity.jobs.handlers import (
    Handler,
    Handlers,
    JobContext,
    PermanentJobError,
    default_handlers,
    noop,
)
from megacity.jobs.keys import Keys
from megacity.jobs.queue import Delivery, RedisQueue
from megacity.jobs.runner import Policy
from megacity.jobs.service import CancelResult, JobService, policy_from, redis_client
from megacity.jobs.worker import Worker

__all__ = [
    "CancelResult",
    "Delivery",
    "EmbeddedWorker",
    "Handler",
    "Handlers",
    "Job",
    "JobContext",
    "JobService",
    "JobStatus",
    "Keys",
    "PermanentJobError",
    "Policy",
    "Priority",
    "RedisQueue",
    "Worker",
    "default_handlers",
    "noop",
    "policy_from",
    "redis_client",
]

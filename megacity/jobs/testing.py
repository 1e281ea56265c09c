"""Test helpers for the job queue: a Redis to use (or a clear skip), a key prefix of one's
own and its clean-up, waiting for jobs to finish, and `megacity worker` child processes."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from typing import Any, Protocol

import redis as sync_redis

from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.jobs import TERMINAL
from megacity.db.models import Job
from megacity.jobs.keys import Keys

REDIS_URL = os.environ.get("MEGACITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_url_or_skip() -> str:
    """The test Redis URL if it answers; else the test fails under CI=true, skips otherwise."""
    from megacity.testing import unavailable

    try:
        client = sync_redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except sync_redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL} is not usable for the tests: {exc}")
    return REDIS_URL


def unique_prefix() -> str:
    """A key prefix no other test run uses."""
    return f"megacity:test:{os.getpid()}:{secrets.token_hex(4)}"


class _KeySpace(Protocol):
    def pattern(self) -> str: ...


def wipe(url: str, keys: _KeySpace) -> int:
    """Delete every key matching `keys.pattern()` (the queue's, the limiter's …); how many."""
    client = sync_redis.Redis.from_url(url)
    try:
        names = list(client.scan_iter(match=keys.pattern(), count=500))
        deleted: Any = client.delete(*names) if names else 0
        return int(deleted)
    finally:
        client.close()


def wait_for_jobs(
    db: Database, ids: Iterable[str], timeout_s: float = 30.0, statuses: frozenset[str] = TERMINAL
) -> list[Job]:
    """Poll the table until every job is in `statuses` (finished, by default); the rows."""
    wanted = list(ids)
    deadline = time.monotonic() + timeout_s
    while True:
        with db.session() as session:
            rows = [repo.get_job(session, job_id) for job_id in wanted]
        if all(row is not None and row.status in statuses for row in rows):
            return [row for row in rows if row is not None]
        if time.monotonic() > deadline:
            seen = {r.id: r.status for r in rows if r is not None}
            raise TimeoutError(f"jobs not finished within {timeout_s} s: {seen}")
        time.sleep(0.05)


def live_workers(url: str, keys: Keys, within_s: float = 10.0) -> list[tuple[str, str]]:
    """(region, consumer) of every worker that beat within `within_s` seconds."""
    client = sync_redis.Redis.from_url(url, decode_responses=True)
    try:
        since = (time.time() - within_s) * 1000
        members: Any = client.zrangebyscore(keys.consumers, since, "+inf")
    finally:
        client.close()
    return [(r, c) for r, _, c in (str(m).partition(" ") for m in members)]


def wait_for_workers(url: str, keys: Keys, count: int, timeout_s: float = 120.0) -> None:
    """Wait until `count` workers are up and beating (however slowly a loaded machine
    started their processes)."""
    deadline = time.monotonic() + timeout_s
    while len(seen := live_workers(url, keys)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(seen)} of {count} workers up after {timeout_s} s: {seen}")
        time.sleep(0.1)


class WorkerProcess:
    """`megacity worker ...` in a child process (stop: SIGTERM; kill: SIGKILL)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        fd, self.log_path = tempfile.mkstemp(prefix="megacity-worker-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "megacity", "worker", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def kill(self) -> None:
        """SIGKILL, as a crashed machine would die."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait; the exit code (SIGKILL after `timeout_s`)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)

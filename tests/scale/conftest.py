"""Fixtures of the scale-out tests: PostgreSQL of tests/db, nginx, and a replica set."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from megacity.jobs.testing import redis_url_or_skip, wipe
from megacity.replicas import ReplicaSet, find_nginx, scale_topology, throwaway_database
from megacity.testing import AuthKit, StandinProcess, unavailable
from tests.api.cluster import ROUTER_ENV
from tests.db.conftest import pg_admin_url  # noqa: F401  (fixture)

# Limits the tests can reach; bursts high enough that the load test's users never trip.
LIMITS = {"user_requests": "8/minute", "firewall_hits": 2, "burst_requests": 1000}
RELOAD_S = 1.0  # signing keys re-read, API-key cache, registry poll: the documented delays


def nginx_or_skip() -> str:
    """nginx (make test installs Debian's); missing fails under CI=true, skips otherwise."""
    binary = find_nginx()
    if binary is None:
        unavailable("nginx is not installed (apt-get install nginx; make test does it)")
    return binary


@dataclass
class Scale:
    replicas: ReplicaSet
    llm: dict[str, StandinProcess]
    kit: AuthKit
    database_url: str
    run: str  # this run's suffix: users here are its own

    def user(self, name: str) -> str:
        return f"{name}-{self.run}-{secrets.token_hex(3)}"

    def replica(self, index: int) -> httpx.Client:
        return httpx.Client(base_url=self.replicas.routers[index].url, timeout=60)

    def front(self) -> httpx.Client:
        return httpx.Client(base_url=self.replicas.url, timeout=60)


@pytest.fixture(scope="module")
def scale(pg_admin_url: str) -> Iterator[Scale]:  # noqa: F811
    nginx_or_skip()
    redis_url = redis_url_or_skip()
    with contextlib.ExitStack() as stack:  # unwound last-in first-out, even on failure
        root = Path(tempfile.mkdtemp(prefix="megacity-scale-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        database_url = stack.enter_context(throwaway_database(pg_admin_url))
        llm = {name: StandinProcess(name) for name in ("llm-a", "llm-b")}
        for node in llm.values():
            stack.callback(node.stop)
            node.start()
        kit = AuthKit(root / "keys", "seoul")
        env = {
            **ROUTER_ENV,
            **kit.env(reload_interval_s=RELOAD_S),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MEGACITY_LIMITS": json.dumps(LIMITS),
            "MEGACITY_AUTH_API_KEY_CACHE_S": str(RELOAD_S),
            "MEGACITY_REGISTRY_SYNC_INTERVAL_S": str(RELOAD_S),
            "MEGACITY_RETENTION_SWEEP_INTERVAL_S": "0",
            "MEGACITY_LOG_LEVEL": "INFO",
        }
        topology = scale_topology({name: node.url for name, node in llm.items()})
        replicas = ReplicaSet(root, topology, env, worker_args=("--kinds", "tts"))
        stack.callback(wipe, redis_url, replicas.keys)
        stack.callback(replicas.stop)
        replicas.start()
        yield Scale(replicas, llm, kit, database_url, secrets.token_hex(3))

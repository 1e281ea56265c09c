"""Fixtures of the job tests: the databases of tests/db, and Redis under a prefix of its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from megacity.jobs import Keys
from megacity.jobs.testing import redis_url_or_skip, unique_prefix, wipe
from tests.db.conftest import (  # noqa: F401  (fixtures)
    _clean_env,
    db,
    pg_admin_url,
    pg_migrated,
    pg_url,
    sqlite_url,
)


@dataclass(frozen=True)
class RedisSpace:
    url: str
    keys: Keys


@pytest.fixture
def redis_space() -> Iterator[RedisSpace]:
    """The test Redis, with a key prefix used by this test only (deleted afterwards)."""
    url = redis_url_or_skip()
    space = RedisSpace(url, Keys(unique_prefix()))
    try:
        yield space
    finally:
        wipe(url, space.keys)

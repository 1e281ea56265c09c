"""The read split against a real PostgreSQL streaming replica (tests/db/pg_replica.py).

Database level: lag-tolerant reads go to the replica, and to the primary while the
replica is down or lagging (logged both ways). Through two router processes sharing
the primary, the replica and Redis: a caller's read right after its own write sees it
even on the other router (the mark is in Redis); later reads are served by the replica,
which the test holds back (`pg_wal_replay_pause`) so that it shows; a killed replica
sends the reads to the primary, and nothing fails.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import yaml
from sqlalchemy import text

from megacity.db import Database
from megacity.jobs.testing import redis_url_or_skip
from megacity.testing import RouterProcess
from tests.api.cluster import ROUTER_ENV, topology
from tests.db.pg_replica import PgPair

DEADLINE_S = 60.0  # every wait is on a condition, bounded by this on a loaded machine
REPLICA = ("hot_standby=on", "fsync=off", "max_connections=60")


@pytest.fixture(scope="module")
def pair() -> Iterator[PgPair]:
    servers = PgPair().start()
    try:
        yield servers
    finally:
        servers.close()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE_S} s: {what}"
        time.sleep(0.1)


def _read_from_replica(db: Database) -> bool:
    with db.read_session() as session:
        return bool(session.execute(text("SELECT pg_is_in_recovery()")).scalar())


def test_reads_go_to_the_replica_and_to_the_primary_while_it_is_down(
    pair: PgPair, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(pair.primary.url, read_url=pair.replica.url)
    assert db.replica is not None
    db.replica.retry_s = 0.3
    try:
        with caplog.at_level(logging.INFO, logger="megacity.db"):
            assert _read_from_replica(db)
            with db.session() as session:  # writes and fresh reads: the primary
                assert session.execute(text("SELECT pg_is_in_recovery()")).scalar() is False
            pair.replica.kill()
            assert not _read_from_replica(db)  # served by the primary, not an error
            assert db.replica.state == "down"
            pair.replica.start(*REPLICA)
            _until(lambda: _read_from_replica(db), "the replica serves reads again")
        states = [
            (r.getMessage(), getattr(r, "state", None) or getattr(r, "was", None))
            for r in caplog.records
        ]
        assert ("read replica not used: reads go to the primary", "down") in states
        assert ("read replica in use", "down") in states
    finally:
        db.close()


def test_a_lagging_replica_is_left_for_the_primary(
    pair: PgPair, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(pair.primary.url, read_url=pair.replica.url, max_lag_s=0.5)
    assert db.replica is not None
    db.replica.retry_s = db.replica.check_s = 0.0
    pair.primary.sql("CREATE TABLE IF NOT EXISTS lag_probe (n int)")
    pair.wait_replayed()
    try:
        with caplog.at_level(logging.WARNING, logger="megacity.db"):
            assert _read_from_replica(db)
            pair.replica.sql("SELECT pg_wal_replay_pause()")
            pair.primary.sql("INSERT INTO lag_probe VALUES (1)")  # received, not replayed
            _until(lambda: not _read_from_replica(db), "reads leave the lagging replica")
            assert db.replica.state == "lagging"
            pair.replica.sql("SELECT pg_wal_replay_resume()")
            _until(lambda: _read_from_replica(db), "reads come back once it caught up")
        assert any(getattr(r, "state", None) == "lagging" for r in caplog.records)
    finally:
        pair.replica.sql("SELECT pg_wal_replay_resume()")
        db.close()


def test_two_routers_read_your_writes_then_the_replica(
    pair: PgPair, tmp_path_factory: pytest.TempPathFactory
) -> None:
    redis_url = redis_url_or_skip()
    tmp = tmp_path_factory.mktemp("replica-routers")
    config = tmp / "topology.yaml"
    dead = dict.fromkeys(("seoul-a", "seoul-b", "tokyo", "cloud"), "http://127.0.0.1:9")
    config.write_text(yaml.safe_dump(topology(dead)), encoding="utf-8")
    env = {
        **ROUTER_ENV,
        "DATABASE_URL": pair.primary.url,
        "DATABASE_READ_URL": pair.replica.url,
        "REDIS_URL": redis_url,  # read-your-writes marks, seen by both routers
        "MEGACITY_DB_READ_YOUR_WRITES_S": "2",
        "MEGACITY_USER_HASH_KEY": secrets.token_hex(16),  # replicas share it
        "MEGACITY_DATA_DIR": str(tmp / "data"),
    }
    routers = [RouterProcess(str(config), env=env) for _ in range(2)]
    learner = {"X-User-Id": f"replica-learner-{secrets.token_hex(4)}"}
    try:
        for router in routers:
            router.start(timeout_s=DEADLINE_S)
        pair.wait_replayed()  # the schema the routers migrated
        one, other = (httpx.Client(base_url=r.url, timeout=30) for r in routers)
        pair.replica.sql("SELECT pg_wal_replay_pause()")  # the replica holds still: it shows
        body = {
            "subject_id": learner["X-User-Id"],
            "granted_by": "guardian",
            "scopes": ["voice_synthesis"],
        }
        made = one.post("/api/v1/consents", json=body, headers=learner)
        assert made.status_code == 201, made.text
        url = f"/api/v1/consents/{made.json()['id']}"
        # Right after the write, even through the other router: the primary answers.
        assert other.get(url, headers=learner).status_code == 200
        # Past the read-your-writes window, the replica answers — and it has not replayed
        # the write yet: the proof that the read went there.
        _until(lambda: other.get(url, headers=learner).status_code == 404, "a replica read")
        pair.replica.sql("SELECT pg_wal_replay_resume()")
        _until(lambda: other.get(url, headers=learner).status_code == 200, "the replica caught up")
        # The replica dies: reads go to the primary, logged, and none fails.
        pair.replica.kill()
        for _ in range(3):
            assert other.get(url, headers=learner).status_code == 200
            assert other.get("/api/v1/consents", headers=learner).json()["data"]
        assert "read replica not used: reads go to the primary" in routers[1].output()
        one.close()
        other.close()
    finally:
        for router in routers:
            router.stop()
        if pair.replica.proc is not None and pair.replica.proc.poll() is not None:
            pair.replica.start(*REPLICA)
        else:
            pair.replica.sql("SELECT pg_wal_replay_resume()")

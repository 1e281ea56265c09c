"""Every replica shows the same picture: RedisBoard against the real Redis, two replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from megacity.jobs.testing import redis_url_or_skip, unique_prefix, wipe
from megacity.observability.replicas import BoardKeys, LocalBoard, RedisBoard
from megacity.observability.rolling import WINDOWS, RollingStats


@pytest.fixture
def space() -> Iterator[tuple[str, BoardKeys]]:
    url = redis_url_or_skip()
    keys = BoardKeys(unique_prefix())
    yield url, keys
    wipe(url, keys)


def nodes_of(name: str, healthy: bool) -> list[dict[str, Any]]:
    return [{"name": "gpu-a", "healthy": healthy, "seen_by": name}]


def board(url: str, keys: BoardKeys, stats: RollingStats, replica: str, healthy: bool = True):
    return RedisBoard(
        Redis.from_url(url),
        stats,
        lambda: nodes_of(replica, healthy),
        keys=keys,
        flush_s=0.5,
        replica=replica,
    )


async def _test_two_replicas_see_each_others_traffic_and_nodes(
    space: tuple[str, BoardKeys],
) -> None:
    url, keys = space
    a_stats, b_stats = RollingStats(), RollingStats()
    a = board(url, keys, a_stats, "router-a")
    b = board(url, keys, b_stats, "router-b", healthy=False)
    try:
        for _ in range(30):
            a_stats.record("llm", "kr-14b", "gpu-a", "edu", 200, 0.02)
        for _ in range(10):
            b_stats.record("llm", "kr-14b", "gpu-a", "edu", 502, 0.2)
        b_stats.event(("failover", "kr-14b", "gpu-a"))
        await b.flush()
        tier = WINDOWS["5m"]
        seen_by_a = await a.snapshot(tier)  # a flushes its own figures first
        seen_by_b = await b.snapshot(tier)
        for snap in (seen_by_a, seen_by_b):
            assert snap.shared and snap.problem is None
            assert snap.replicas == ["router-a", "router-b"]
            assert {r: v[0]["healthy"] for r, v in snap.nodes.items()} == {
                "router-a": True,
                "router-b": False,
            }
            s = snap.summary
            row = s.routes[("llm", "kr-14b", "edu")]
            assert (row.requests, row.errors) == (40, 10)
            assert s.events == {("failover", "kr-14b", "gpu-a"): 1}
        # flushing again never counts twice (each replica owns its hash field)
        await a.flush()
        await a.flush()
        again = (await b.snapshot(tier)).summary
        assert again.total.requests == 40
        # the hour and the day see the same requests
        for name in ("1h", "24h"):
            snap = await b.snapshot(WINDOWS[name])
            assert snap.summary.total.requests == 40
    finally:
        await a.stop()
        await b.stop()


async def _test_a_replica_that_stops_publishing_leaves_the_node_picture(
    space: tuple[str, BoardKeys],
) -> None:
    url, keys = space
    a = board(url, keys, RollingStats(), "router-a")
    gone = board(url, keys, RollingStats(), "router-gone")
    gone.flush_s = 0.2  # its node views expire after ~1 s
    try:
        await gone.flush()
        await a.flush()
        assert set((await a.snapshot(WINDOWS["5m"])).nodes) == {"router-a", "router-gone"}
        deadline = asyncio.get_running_loop().time() + 15
        while "router-gone" in (await a.snapshot(WINDOWS["5m"])).nodes:
            assert asyncio.get_running_loop().time() < deadline, "stale replica never expired"
            await asyncio.sleep(0.2)
    finally:
        await a.stop()
        await gone.stop()


async def _test_without_redis_the_board_shows_this_replica_and_says_why() -> None:
    stats = RollingStats()
    stats.record("llm", "m", "n", "z", 200, 0.01)
    dead = RedisBoard(
        Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5),
        stats,
        lambda: nodes_of("me", True),
        replica="me",
    )
    snap = await dead.snapshot(WINDOWS["5m"])
    assert not snap.shared and snap.problem and "Redis" in snap.problem
    assert snap.summary.total.requests == 1
    await dead.redis.aclose()
    local = await LocalBoard(stats, lambda: []).snapshot(WINDOWS["5m"])
    assert not local.shared and local.problem is None


def test_two_replicas_see_each_others_traffic_and_nodes(space: tuple[str, BoardKeys]) -> None:
    asyncio.run(_test_two_replicas_see_each_others_traffic_and_nodes(space))


def test_a_replica_that_stops_publishing_leaves_the_node_picture(
    space: tuple[str, BoardKeys],
) -> None:
    asyncio.run(_test_a_replica_that_stops_publishing_leaves_the_node_picture(space))


def test_without_redis_the_board_shows_this_replica_and_says_why() -> None:
    asyncio.run(_test_without_redis_the_board_shows_this_replica_and_says_why())


async def _test_usage_by_group_is_shared_through_redis(space: tuple[str, BoardKeys]) -> None:
    url, keys = space
    a_stats, b_stats = RollingStats(), RollingStats()
    a = board(url, keys, a_stats, "router-a")
    b = board(url, keys, b_stats, "router-b")
    try:
        for _ in range(3):
            a_stats.record("llm", "kr-14b", "gpu-a", "edu", 200, 0.02, None, "school-a", 12)
        for _ in range(2):
            b_stats.record("llm", "kr-14b", "gpu-a", "edu", 200, 0.02, None, "school-a", 12)
            b_stats.record("llm", "kr-14b", "gpu-a", "lite", 502, 0.2, None, "school-b", 0)
        await b.flush()
        for snap in (await a.snapshot(WINDOWS["5m"]), await b.snapshot(WINDOWS["24h"])):
            groups = snap.summary.groups
            assert (groups["school-a"].requests, groups["school-a"].tokens) == (5, 60)
            assert (groups["school-b"].requests, groups["school-b"].errors) == (2, 2)
    finally:
        await a.stop()
        await b.stop()


def test_usage_by_group_is_shared_through_redis(space: tuple[str, BoardKeys]) -> None:
    asyncio.run(_test_usage_by_group_is_shared_through_redis(space))

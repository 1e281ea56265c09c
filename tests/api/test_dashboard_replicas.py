"""Two router replicas sharing Redis show the same dashboard: traffic, events and nodes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from megacity.jobs.testing import redis_url_or_skip, unique_prefix, wipe
from megacity.observability.replicas import BoardKeys
from megacity.testing import RouterProcess, StandinProcess
from tests.api.cluster import ROUTER_ENV, topology

CHAT = {"model": "small-7b", "messages": [{"role": "user", "content": "What is a verb?"}]}


@dataclass
class Replicas:
    routers: list[RouterProcess]
    nodes: dict[str, StandinProcess]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    url = redis_url_or_skip()
    prefix = unique_prefix()
    tmp = tmp_path_factory.mktemp("replicas")
    nodes = {name: StandinProcess(name) for name in ("seoul-a", "seoul-b", "tokyo", "cloud")}
    routers: list[RouterProcess] = []
    try:
        for node in nodes.values():
            node.start()
        config = tmp / "topology.yaml"
        urls = {name: n.url for name, n in nodes.items()}
        config.write_text(yaml.safe_dump(topology(urls)), encoding="utf-8")
        for name in ("a", "b"):
            env = {
                **ROUTER_ENV,
                "REDIS_URL": url,
                "MEGACITY_JOBS_KEY_PREFIX": f"{prefix}:jobs",
                "MEGACITY_DASHBOARD_KEY_PREFIX": f"{prefix}:dash",
                "MEGACITY_DASHBOARD_FLUSH_S": "0.5",
                "MEGACITY_DATA_DIR": str(tmp / f"data-{name}"),
            }
            router = RouterProcess(str(config), env=env)
            routers.append(router)
            router.start()
        yield Replicas(routers, nodes)
    finally:
        for router in routers:
            router.stop()
        for node in nodes.values():
            node.stop()
        wipe(url, BoardKeys(f"{prefix}:dash"))


def data(router: RouterProcess, window: str = "5m") -> dict[str, Any]:
    resp = httpx.get(f"{router.url}/dashboard/data?window={window}", timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def until(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_every_replica_shows_every_replicas_traffic(replicas: Replicas) -> None:
    a, b = replicas.routers
    for router, count in ((a, 5), (b, 3)):
        for _ in range(count):
            resp = httpx.post(
                f"{router.url}/v1/chat/completions", json=CHAT, headers={"X-Zone": "lite"}
            )
            assert resp.status_code == 200

    def both_see_eight() -> bool:
        return all(data(r)["traffic"]["total"]["requests"] == 8 for r in (a, b))

    until(both_see_eight, "both replicas to count 8 requests")
    for router in (a, b):
        seen = data(router)
        assert seen["shared"] is True and len(seen["replicas"]) == 2
        assert {n["name"] for n in seen["nodes"]} == set(replicas.nodes)
        assert all(len(n["replicas"]) == 2 for n in seen["nodes"])


def test_a_dead_node_is_down_on_every_replica_with_the_reason(replicas: Replicas) -> None:
    a, b = replicas.routers
    replicas.nodes["tokyo"].kill()

    def down_everywhere() -> bool:
        rows = [next(n for n in data(r)["nodes"] if n["name"] == "tokyo") for r in (a, b)]
        return all(row["status"] == "down" for row in rows)

    until(down_everywhere, "tokyo to be down on both replicas")
    for router in (a, b):
        row = next(n for n in data(router)["nodes"] if n["name"] == "tokyo")
        assert "unreachable" in row["health_reason"]
        assert all(not v["healthy"] for v in row["replicas"].values())


def test_one_replicas_failovers_and_breaker_show_on_the_other(replicas: Replicas) -> None:
    a, b = replicas.routers
    replicas.nodes["seoul-a"].configure(fail="500")
    try:

        def b_sees_it() -> bool:
            # every request that lands on seoul-a fails over to seoul-b
            resp = httpx.post(f"{a.url}/v1/chat/completions", json=CHAT, headers={"X-Zone": "lite"})
            assert resp.status_code == 200 and resp.headers["x-megacity-node"] != "seoul-a"
            row = next(n for n in data(b)["nodes"] if n["name"] == "seoul-a")
            return row["breaker"] == "open" and bool(row["last_error"])

        until(b_sees_it, "replica b to see seoul-a's open breaker")
        seen = data(b)
        row = next(n for n in seen["nodes"] if n["name"] == "seoul-a")
        assert "HTTP 500" in row["last_error"] and row["consecutive_failures"] >= 3
        assert row["status"] == "degraded"  # open on a, closed on b (b sent it nothing)
        assert row["down_on"] == [r for r in seen["replicas"] if r != seen["replica"]]
        failovers = {(f["model"], f["node"]): f["count"] for f in seen["events"]["failovers"]}
        assert failovers[("small-7b", "seoul-a")] >= 3
    finally:
        replicas.nodes["seoul-a"].configure(fail="none")

"""Node balancer: least loaded, region order, cloud last, bounded waits, breaker feedback."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from typing import Any

import pytest

from megacity.config.topology import Topology, parse_topology
from megacity.errors import ServiceUnavailable
from megacity.routing.balancer import Balancer, Lease

MODEL = "m-7b"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def node(name: str, region: str = "r1", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "engine": "llm",
        "url": f"http://10.0.0.{len(name)}:8000",
        "models": [MODEL],
        "region": region,
        **extra,
    }


def topology(*nodes: dict[str, Any], regions: tuple[str, ...] = ("r1", "r2", "r3")) -> Topology:
    return parse_topology(
        {
            "regions": [{"name": r} for r in regions],
            "nodes": list(nodes),
            "models": [{"name": MODEL, "tier": "7b"}, {"name": "other-14b", "tier": "14b"}],
        }
    )


def balancer(*nodes: dict[str, Any], **kwargs: Any) -> Balancer:
    regions = kwargs.pop("regions", ("r1", "r2", "r3"))
    return Balancer(topology(*nodes, regions=regions), **kwargs)


def picked(b: Balancer, region: str | None = None, exclude: tuple[str, ...] = ()) -> str | None:
    state = b.pick(MODEL, region, exclude)
    return state.name if state else None


# --- least loaded --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loads", "winner"),
    [
        # name → (in_flight, reported_waiting)
        ({"a": (3, 0), "b": (1, 0), "c": (2, 0)}, "b"),
        ({"a": (0, 10), "b": (3, 0)}, "b"),  # the node's own queue counts
        ({"a": (2, 2), "b": (3, 0)}, "b"),
        ({"a": (0, 0), "b": (5, 0)}, "a"),
    ],
)
def test_least_loaded_wins(loads: dict[str, tuple[int, float]], winner: str) -> None:
    b = balancer(*(node(name) for name in loads))
    for name, (in_flight, waiting) in loads.items():
        b.nodes[name].in_flight = in_flight
        b.nodes[name].reported_waiting = waiting
    for _ in range(3):  # no rotation among unequal loads
        assert picked(b) == winner


@pytest.mark.parametrize(
    ("big_in_flight", "small_in_flight", "winner"),
    [
        (3, 2, "big"),  # 3/2 = 1.5 < 2/1
        (1, 1, "big"),  # 0.5 < 1
        (5, 2, "small"),  # 2.5 > 2
        (4, 1, "small"),  # 2 > 1
    ],
)
def test_weight_divides_load(big_in_flight: int, small_in_flight: int, winner: str) -> None:
    b = balancer(node("big", weight=2.0), node("small", weight=1.0))
    b.nodes["big"].in_flight = big_in_flight
    b.nodes["small"].in_flight = small_in_flight
    assert b.nodes["big"].load == big_in_flight / 2
    assert b.nodes["small"].load == small_in_flight
    assert picked(b) == winner


def test_equal_weighted_loads_are_a_tie() -> None:
    b = balancer(node("big", weight=2.0), node("small", weight=1.0))
    b.nodes["big"].in_flight = 4  # 4/2 == 2/1
    b.nodes["small"].in_flight = 2
    assert {picked(b), picked(b)} == {"big", "small"}


def test_weighted_node_takes_its_share_under_acquire() -> None:
    b = balancer(node("big", weight=2.0), node("small", weight=1.0))

    async def run() -> Counter[str]:
        return Counter([(await b.acquire(MODEL)).name for _ in range(30)])

    counts = asyncio.run(run())
    assert counts == {"big": 20, "small": 10}


def test_equally_loaded_nodes_alternate() -> None:
    b = balancer(node("a"), node("b"))
    picks = [picked(b) for _ in range(8)]
    assert set(picks) == {"a", "b"}
    assert all(x != y for x, y in itertools.pairwise(picks))


def test_three_equal_nodes_share_evenly() -> None:
    b = balancer(node("a"), node("b"), node("c"))
    counts = Counter(picked(b) for _ in range(60))
    assert counts == {"a": 20, "b": 20, "c": 20}


def test_pick_has_no_side_effect_on_load() -> None:
    b = balancer(node("a"))
    assert picked(b) == "a"
    assert b.nodes["a"].in_flight == 0


# --- region order and cloud -------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "full", "winner"),
    [
        ("r1", (), "r1-a"),
        ("r2", (), "r2-a"),
        ("r3", (), "r3-a"),
        ("r1", ("r1-a",), "r2-a"),  # then other regions in topology order
        ("r3", ("r3-a",), "r1-a"),
        ("r2", ("r2-a", "r1-a"), "r3-a"),
        ("r2", ("r2-a", "r1-a", "r3-a"), "cloud"),  # cloud only when no local node can
        (None, (), "r1-a"),  # default region: the first one
        ("nowhere", (), "r1-a"),  # unknown request region: the default region
    ],
)
def test_region_order_then_cloud(region: str | None, full: tuple[str, ...], winner: str) -> None:
    b = balancer(
        node("cloud", region="r1", kind="cloud", max_concurrency=100),
        node("r3-a", region="r3", max_concurrency=1),
        node("r2-a", region="r2", max_concurrency=1),
        node("r1-a", region="r1", max_concurrency=1),
    )
    for name in full:
        b.nodes[name].in_flight = 1
    assert picked(b, region) == winner


def test_cloud_loses_even_when_idle_and_local_is_busy() -> None:
    b = balancer(node("local-a", region="r1"), node("cloud", region="r1", kind="cloud"))
    b.nodes["local-a"].in_flight = 50
    assert picked(b, "r1") == "local-a"


def test_request_region_wins_over_a_less_loaded_remote_region() -> None:
    b = balancer(node("seoul", region="r1"), node("tokyo", region="r2"))
    b.nodes["seoul"].in_flight = 40
    assert picked(b, "r1") == "seoul"
    assert picked(b, "r2") == "tokyo"


def test_default_region_parameter() -> None:
    b = balancer(node("seoul", region="r1"), node("tokyo", region="r2"), default_region="r2")
    assert picked(b) == "tokyo"
    assert picked(b, "r1") == "seoul"


def test_unknown_default_region_does_not_hide_every_node() -> None:
    try:
        b = balancer(node("seoul", region="r1"), default_region="kr-seul")
    except ValueError:
        return  # rejecting the region at start-up is a fine answer too
    assert picked(b) == "seoul"


@pytest.mark.parametrize(
    ("breakage", "winner"),
    [
        ("unhealthy", "cloud"),
        ("breaker", "cloud"),
        ("full", "cloud"),
        ("none", "local-a"),
    ],
)
def test_cloud_when_local_cannot_take_it(breakage: str, winner: str) -> None:
    clock = FakeClock()
    b = balancer(
        node("local-a", region="r1", max_concurrency=2),
        node("local-b", region="r2", max_concurrency=2),
        node("cloud", region="r3", kind="cloud"),
        breaker_failures=1,
        clock=clock,
    )
    for name in ("local-a", "local-b"):
        state = b.nodes[name]
        if breakage == "unhealthy":
            state.healthy = False
        elif breakage == "breaker":
            state.breaker.on_failure()
        elif breakage == "full":
            state.in_flight = 2
    assert picked(b, "r1") == winner


@pytest.mark.parametrize(
    ("exclude", "winner"),
    [
        ((), "a"),
        (("a",), "b"),
        (("a", "b"), "cloud"),
        (("a", "b", "cloud"), None),
    ],
)
def test_exclude(exclude: tuple[str, ...], winner: str | None) -> None:
    b = balancer(node("a"), node("b"), node("cloud", kind="cloud"))
    b.nodes["b"].in_flight = 1
    assert picked(b, "r1", exclude) == winner


def test_unknown_model_has_no_candidates() -> None:
    b = balancer(node("a"))
    assert b.pick("no-such-model") is None
    assert b.pick("other-14b") is None  # declared, but no node serves it


# --- acquire / release ------------------------------------------------------------


def test_acquire_and_release_keep_in_flight_right() -> None:
    b = balancer(node("a"), node("b"))

    async def run() -> None:
        held = [await b.acquire(MODEL) for _ in range(5)]
        assert sorted(s.in_flight for s in b.nodes.values()) == [2, 3]
        assert sum(s.in_flight for s in b.nodes.values()) == 5
        for i, state in enumerate(held):
            b.release(state, (True, False, None)[i % 3])
        assert [s.in_flight for s in b.nodes.values()] == [0, 0]

    asyncio.run(run())


def test_acquire_respects_exclude_and_region() -> None:
    b = balancer(node("a", region="r1"), node("b", region="r2"))

    async def run() -> tuple[str, str]:
        first = await b.acquire(MODEL, "r1", exclude=["a"])
        second = await b.acquire(MODEL, "r2")
        return first.name, second.name

    assert asyncio.run(run()) == ("b", "b")


def test_acquire_waits_for_a_released_slot() -> None:
    b = balancer(node("a", max_concurrency=1))

    async def run() -> tuple[Lease, float]:
        held = await b.acquire(MODEL)

        async def release_soon() -> None:
            await asyncio.sleep(0.05)
            b.release(held, True)

        releaser = asyncio.create_task(release_soon())
        start = time.monotonic()
        state = await b.acquire(MODEL, timeout_s=2.0)
        elapsed = time.monotonic() - start
        await releaser
        return state, elapsed

    state, elapsed = asyncio.run(run())
    assert state.name == "a"
    assert state.state.in_flight == 1
    assert 0.03 <= elapsed < 0.2  # woken by the release, not by a poll or the timeout


def test_acquire_times_out_with_no_capacity() -> None:
    b = balancer(node("a", max_concurrency=1), node("b", max_concurrency=1))

    async def run() -> tuple[ServiceUnavailable, float]:
        await b.acquire(MODEL)
        await b.acquire(MODEL)
        start = time.monotonic()
        with pytest.raises(ServiceUnavailable) as info:
            await b.acquire(MODEL, timeout_s=0.1, retry_after_s=3)
        return info.value, time.monotonic() - start

    error, elapsed = asyncio.run(run())
    assert error.code == "no_capacity"
    assert error.status == 503
    assert error.headers["Retry-After"] == "3"
    assert 0.09 <= elapsed < 0.5
    assert [s.in_flight for s in b.nodes.values()] == [1, 1]  # nothing leaked


def test_zero_timeout_fails_at_once_when_full() -> None:
    b = balancer(node("a", max_concurrency=1))

    async def run() -> str:
        await b.acquire(MODEL)
        with pytest.raises(ServiceUnavailable) as info:
            await b.acquire(MODEL, timeout_s=0)
        return info.value.code

    assert asyncio.run(run()) == "no_capacity"


@pytest.mark.parametrize("breakage", ["unhealthy", "breaker", "excluded", "unserved"])
def test_no_healthy_node_fails_immediately(breakage: str) -> None:
    b = balancer(node("a"), node("b"), breaker_failures=1, clock=FakeClock())
    model = MODEL
    exclude: tuple[str, ...] = ()
    for state in b.nodes.values():
        if breakage == "unhealthy":
            state.healthy = False
        elif breakage == "breaker":
            state.breaker.on_failure()
    if breakage == "excluded":
        exclude = ("a", "b")
    if breakage == "unserved":
        model = "other-14b"

    async def run() -> tuple[ServiceUnavailable, float]:
        start = time.monotonic()
        with pytest.raises(ServiceUnavailable) as info:
            await b.acquire(model, exclude=exclude, timeout_s=5.0, retry_after_s=2)
        return info.value, time.monotonic() - start

    error, elapsed = asyncio.run(run())
    assert error.code == "no_healthy_node"
    assert error.headers["Retry-After"] == "2"
    assert elapsed < 0.1


def test_failures_open_the_breaker_and_the_node_stops_being_picked() -> None:
    clock = FakeClock()
    b = balancer(node("a"), node("b"), breaker_failures=3, breaker_reset_s=5.0, clock=clock)
    b.nodes["b"].in_flight = 10  # "a" is preferred while it works

    async def run() -> None:
        for _ in range(2):
            state = await b.acquire(MODEL)
            assert state.name == "a"
            b.release(state, False)
        assert picked(b) == "a"  # two failures: still closed
        state = await b.acquire(MODEL)
        b.release(state, False)  # third consecutive failure opens the breaker
        assert [picked(b) for _ in range(3)] == ["b", "b", "b"]
        assert (await b.acquire(MODEL)).name == "b"

        clock.now += 5.0  # half-open: "a" gets exactly one probe
        probe = await b.acquire(MODEL)
        assert probe.name == "a"
        assert picked(b) == "b"
        b.release(probe, True)  # the probe succeeded: closed again
        assert picked(b) == "a"

    asyncio.run(run())


def test_a_success_between_failures_keeps_the_node() -> None:
    b = balancer(node("a"), node("b"), breaker_failures=2, clock=FakeClock())
    b.nodes["b"].in_flight = 10

    async def run() -> None:
        for outcome in (False, True, False, None, True, False):
            state = await b.acquire(MODEL)
            assert state.name == "a"
            b.release(state, outcome)

    asyncio.run(run())
    assert picked(b) == "a"

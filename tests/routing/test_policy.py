"""Balancing policies with a fake clock and fake stats: affinity, bounded load, fallback."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from megacity.config.topology import TopologyError, parse_topology
from megacity.routing.balancer import Balancer
from megacity.routing.conversation import conversation_key, output_tokens, route_hint
from megacity.routing.policy import (
    AFFINITY,
    MOVED,
    NEW_CONVERSATION,
    NO_KEY,
    OVERLOADED,
    SPILL,
    CacheAware,
    HashRing,
    RouteHint,
)
from megacity.routing.tokens import TokenLedger, Usage, find_usage
from megacity.testing import FakeClock

MODEL = "m-7b"


def topology(
    names: tuple[str, ...] = ("a", "b", "c", "d"),
    routing: dict[str, Any] | None = None,
    zones: dict[str, Any] | None = None,
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    return {
        "regions": [{"name": "r1"}],
        "nodes": [
            {
                "name": n,
                "engine": "llm",
                "url": f"http://10.0.0.{i + 1}:8000",
                "models": [MODEL],
                "region": "r1",
                "weight": (weights or {}).get(n, 1.0),
            }
            for i, n in enumerate(names)
        ],
        "models": [{"name": MODEL, "tier": "7b"}],
        "zones": zones or {"z": {"engines": {"llm": MODEL}}},
        **({"routing": routing} if routing else {}),
    }


def balancer(clock: FakeClock | None = None, **kwargs: Any) -> Balancer:
    return Balancer(
        parse_topology(topology(**kwargs)),
        breaker_failures=1,
        breaker_reset_s=5.0,
        clock=clock or FakeClock(),
    )


def key(i: int) -> RouteHint:
    return RouteHint(zone="z", key=f"conversation-{i}".encode())


def chosen(b: Balancer, hint: RouteHint | None) -> tuple[str, str]:
    choice = b.choose(MODEL, None, (), hint)
    assert choice is not None
    return choice.state.name, choice.reason


# --- affinity --------------------------------------------------------------------------


def test_a_conversation_keeps_its_node_and_conversations_spread() -> None:
    b = balancer()
    homes = {}
    for i in range(200):
        first = chosen(b, key(i))
        assert first[1] == AFFINITY
        for _ in range(5):  # every later turn, whatever else happened in between
            assert chosen(b, key(i)) == first
        homes[i] = first[0]
    spread = Counter(homes.values())
    assert set(spread) == {"a", "b", "c", "d"}
    assert min(spread.values()) >= 25  # 50 each on average; the ring is not lopsided


def test_weight_gives_a_node_its_share_of_conversations() -> None:
    b = balancer(weights={"a": 2.0})
    spread = Counter(chosen(b, key(i))[0] for i in range(2000))
    assert 0.3 < spread["a"] / 2000 < 0.5  # 2 of 5 units of weight


def test_ring_walk_visits_each_member_once() -> None:
    ring = HashRing([("a", 1.0), ("b", 1.0), ("c", 2.0)], points=50)
    walk = list(ring.walk(b"k"))
    assert sorted(walk) == ["a", "b", "c"]
    assert list(ring.walk(b"k")) == walk  # deterministic: every replica agrees


def test_without_a_key_least_loaded_decides() -> None:
    b = balancer()
    for name, busy in zip("abcd", (3, 1, 0, 2), strict=True):
        b.nodes[name].in_flight = busy
    assert chosen(b, RouteHint(zone="z")) == ("c", NO_KEY)


def test_a_conversations_first_turn_is_placed_by_load() -> None:
    b = balancer()
    for name, busy in zip("abcd", (3, 1, 0, 2), strict=True):
        b.nodes[name].in_flight = busy
    opening = RouteHint(zone="z", key=b"conversation-1", opening=True)
    assert chosen(b, opening) == ("c", NEW_CONVERSATION)


def test_only_a_first_turn_keyed_by_its_text_opens_a_conversation() -> None:
    ledger = TokenLedger()
    first = route_hint(chat("What is 1/2 + 1/3?"), MODEL, "z", None, ledger)
    later = route_hint(chat("What is 1/2 + 1/3?", "5/6.", "And 1/4?"), MODEL, "z", None, ledger)
    session = route_hint(chat("What is 1/2 + 1/3?"), MODEL, "z", "sess-1", ledger)
    assert first.opening and first.key == later.key
    assert not later.opening  # it has an answer: its history is cached somewhere
    assert not session.opening  # an explicit session sticks from its first turn


# --- bounded load -------------------------------------------------------------------


def test_an_overloaded_home_spills_to_the_next_node_on_the_ring() -> None:
    b = balancer()
    home, _ = chosen(b, key(7))
    ring = list(CacheAware().ring(list(b.nodes.values())).walk(key(7).key or b""))
    assert ring[0] == home
    for name in "abcd":
        b.nodes[name].in_flight = 4
    b.nodes[home].in_flight = 20  # share (12 + 20) / 4 = 8, bound 2 × 8 + 1 = 17: over
    assert chosen(b, key(7)) == (ring[1], SPILL)
    b.nodes[home].in_flight = 12  # share 6, bound 13: under the bound again, back home
    assert chosen(b, key(7)) == (home, AFFINITY)


def test_a_lightly_used_cluster_keeps_conversations_in_place() -> None:
    b = balancer()
    home, _ = chosen(b, key(3))
    b.nodes[home].in_flight = 1  # others idle: one request of slack keeps it home
    assert chosen(b, key(3)) == (home, AFFINITY)


def test_the_engines_queue_and_tokens_count_as_load() -> None:
    b = balancer()
    home, _ = chosen(b, key(11))
    b.nodes[home].reported_waiting = 6.0  # another router's traffic, as scraped
    assert chosen(b, key(11))[1] == SPILL
    b.nodes[home].reported_waiting = 0.0
    b.nodes[home].tokens_in_flight = 8 * 1024  # eight long prompts being prefilled
    assert chosen(b, key(11))[1] == SPILL


def test_the_chosen_node_is_never_over_its_bound() -> None:
    # Some node is always under (1 + ε) × its share + 1 (the loads cannot all be above
    # their mean): the walk stops there, and the last resort (least loaded) never fires.
    import random

    rng = random.Random(5)
    b = balancer(weights={"a": 2.0}, routing={"policy": "cache_aware", "load_factor": 1.1})
    reasons: Counter[str] = Counter()
    for trial in range(300):
        for state in b.nodes.values():
            state.in_flight = rng.randint(0, 40)
            state.reported_waiting = float(rng.choice((0, 0, 5, 30)))
        total = sum(s.raw_load for s in b.nodes.values())
        name, reason = chosen(b, key(trial))
        state = b.nodes[name]
        assert state.raw_load < 1.1 * total * state.node.weight / 5.0 + 1.0
        reasons[reason] += 1
    assert reasons[OVERLOADED] == 0
    assert reasons[AFFINITY] > 0 and reasons[SPILL] > 0


# --- failure: a dead node's conversations move and come back -------------------------


def test_a_dead_nodes_conversations_move_and_come_back() -> None:
    clock = FakeClock()
    b = balancer(clock)
    homes = {i: chosen(b, key(i))[0] for i in range(100)}
    dead = homes[0]
    b.nodes[dead].breaker.on_failure()  # one failure opens it (breaker_failures=1)
    moved = {}
    for i, home in homes.items():
        name, reason = chosen(b, key(i))
        if home == dead:
            assert name != dead and reason == MOVED
            moved[i] = name
        else:
            assert (name, reason) == (home, AFFINITY)  # nobody else's conversation moves
    for i, name in moved.items():  # moved ones stay together on their new node
        assert chosen(b, key(i)) == (name, MOVED)
    b.nodes[dead].healthy = False  # the health probe agrees it is down
    clock.now = 10.0  # half-open, but unhealthy: still skipped
    assert all(chosen(b, key(i))[0] != dead for i in moved)
    b.nodes[dead].healthy = True
    b.nodes[dead].breaker.on_success()
    for i in moved:
        assert chosen(b, key(i)) == (dead, AFFINITY)  # back where its cache was


def test_a_retry_excludes_the_failed_node() -> None:
    b = balancer()
    home, _ = chosen(b, key(2))
    choice = b.choose(MODEL, None, (home,), key(2))
    assert choice is not None and choice.state.name != home and choice.reason == MOVED


def test_acquire_under_the_policy_reserves_tokens_and_releases_them() -> None:
    async def scenario() -> None:
        b = balancer()
        hint = RouteHint(zone="z", key=b"k", prompt_tokens=3000, output_tokens=200)
        lease = await b.acquire(MODEL, hint=hint)
        state = lease.state
        assert lease.reason == AFFINITY
        assert (state.in_flight, state.tokens_in_flight) == (1, 3200)
        b.prefilled(lease)  # the first token came back
        assert state.tokens_in_flight == 200
        b.release(lease, True)
        assert (state.in_flight, state.tokens_in_flight) == (0, 0)

    asyncio.run(scenario())


# --- configuration ---------------------------------------------------------------------


def test_policy_is_per_zone() -> None:
    b = balancer(
        routing={"policy": "least_loaded"},
        zones={
            "z": {"engines": {"llm": MODEL}, "routing": {"policy": "cache_aware"}},
            "rr": {"engines": {"llm": MODEL}, "routing": {"policy": "round_robin"}},
            "plain": {"engines": {"llm": MODEL}},
        },
    )
    assert b.policy("z").name == "cache_aware"
    assert b.policy("rr").name == "round_robin"
    assert b.policy("plain").name == "least_loaded"  # the topology's
    assert b.policy(None).name == "least_loaded"
    rr = [chosen(b, RouteHint(zone="rr", key=b"same"))[0] for _ in range(8)]
    assert Counter(rr) == Counter({n: 2 for n in "abcd"})  # keys ignored, turns taken


def test_cache_aware_is_the_default() -> None:
    assert balancer().policy("z").name == "cache_aware"


@pytest.mark.parametrize(
    "routing", [{"policy": "sticky"}, {"load_factor": 0.5}, {"virtual_nodes": 0}, {"eps": 1}]
)
def test_bad_routing_config_is_refused(routing: dict[str, Any]) -> None:
    with pytest.raises(TopologyError, match="routing"):
        parse_topology(topology(routing=routing))


# --- conversation keys and tokens ------------------------------------------------------

SYSTEM = {"role": "system", "content": "You are a math tutor."}


def chat(*turns: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [SYSTEM]
    for i, text in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return {"model": "auto", "messages": messages}


def test_conversation_key_survives_later_turns_and_tells_learners_apart() -> None:
    first = conversation_key(chat("What is 1/2 + 1/3?"), None)
    later = conversation_key(chat("What is 1/2 + 1/3?", "5/6.", "And 1/4 + 1/4?"), None)
    other = conversation_key(chat("Why is the sky blue?"), None)
    assert first is not None and first == later and first != other
    other_strategy = chat("What is 1/2 + 1/3?")
    other_strategy["messages"][0] = {"role": "system", "content": "You are an essay coach."}
    assert conversation_key(other_strategy, None) != first


def test_explicit_keys_win() -> None:
    body = chat("What is 1/2 + 1/3?")
    by_session = conversation_key(body, "sess-1")
    by_user = conversation_key({**body, "user": "learner-9"}, None)
    assert len({by_session, by_user, conversation_key(body, None)}) == 3
    assert conversation_key({**body, "user": "learner-9"}, "sess-1") == by_session
    assert conversation_key({"model": "m", "prompt": "Once upon a time"}, None) is None
    assert conversation_key({"model": "m", "prompt": "x", "user": "u"}, None) is not None


def test_route_hint_estimates_tokens_and_learns_from_usage() -> None:
    ledger = TokenLedger(alpha=0.5)
    body = chat("a" * 4000)  # ~1000 tokens of Latin text
    hint = route_hint(body, MODEL, "z", None, ledger)
    assert 950 < hint.prompt_tokens < 1100
    assert hint.output_tokens == 256  # nothing learnt yet, no max_tokens
    ledger.settle(
        MODEL,
        hint.prompt_tokens,
        Usage(prompt_tokens=2 * hint.prompt_tokens, completion_tokens=100),
    )
    again = route_hint(body, MODEL, "z", None, ledger)
    assert again.prompt_tokens == pytest.approx(2 * hint.prompt_tokens, rel=0.01)
    assert again.output_tokens == 100
    assert output_tokens({"max_tokens": 40, "n": 2}, 100.0) == 80  # capped, per choice


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"id":"x","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}',
            Usage(5, 7),
        ),
        (
            b'data: {"choices":[],"usage": {"prompt_tokens": 9, "completion_tokens": 1}}\n\n',
            Usage(9, 1),
        ),
        (b'{"id":"x","usage":null}', None),
        (b'{"id":"x"}', None),
        (b'{"usage":{"prompt_tokens":"5","completion_tokens":7}}', None),
    ],
)
def test_find_usage(body: bytes, expected: Usage | None) -> None:
    assert find_usage(body) == expected

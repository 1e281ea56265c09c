"""End to end: conversations stick to the node holding their cache, and move when it dies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.api.cluster import Cluster, start_cluster


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Cluster]:
    """Two Seoul nodes (and the others) of its own: this test kills one."""
    c = start_cluster(tmp_path, names=("seoul-a", "seoul-b", "tokyo", "cloud"))
    yield c
    c.stop()


def _turn(client: openai.OpenAI, messages: list[dict[str, Any]]) -> tuple[str, str, str]:
    """One turn of a conversation: (node, X-MegaCity-Route, the answer appended to it)."""
    raw = client.chat.completions.with_raw_response.create(model="kr-14b", messages=messages)
    completion = raw.parse()
    text = completion.choices[0].message.content or ""
    messages.append({"role": "assistant", "content": text})
    return raw.headers["X-MegaCity-Node"], raw.headers["X-MegaCity-Route"], text


def test_conversations_stick_to_a_node_and_move_when_it_dies(fresh: Cluster) -> None:
    client = fresh.client(**{"X-Zone": "edu"})
    conversations = [
        [{"role": "user", "content": f"learner {i}: 분수의 덧셈을 설명해 줘"}] for i in range(12)
    ]
    homes: dict[int, str] = {}
    for turn in range(4):
        for i, messages in enumerate(conversations):
            node, route, _ = _turn(client, messages)
            if turn == 0:  # a first turn has nothing cached anywhere: placed by load
                assert route == "cache_aware; reason=new_conversation"
            else:
                assert route == "cache_aware; reason=affinity"
                assert homes.setdefault(i, node) == node  # every later turn on one node
            messages.append({"role": "user", "content": f"turn {turn}: 다음 문제도 풀어 줘"})
    assert set(homes.values()) == {"seoul-a", "seoul-b"}  # conversations spread over both

    dead = homes[0]
    fresh.nodes[dead].kill()
    errors: list[BaseException] = []
    after: dict[int, list[tuple[str, str]]] = {}
    for turn in range(4):
        for i, messages in enumerate(conversations):
            try:
                node, route, _ = _turn(client, messages)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
                continue
            after.setdefault(i, []).append((node, route))
            messages.append({"role": "user", "content": f"after {turn}: 계속해 줘"})
    assert errors == []  # no failed request: the first ones were retried on the other node
    for i, turns in after.items():
        nodes = [n for n, _ in turns]
        assert dead not in nodes
        if homes[i] == dead:
            # moved to the next node on the ring, and kept there once the breaker opened
            assert turns[-1] == (nodes[-1], "cache_aware; reason=moved")
            assert len(set(nodes)) == 1
        else:
            assert turns == [(homes[i], "cache_aware; reason=affinity")] * 4  # untouched

    metrics = httpx.get(f"{fresh.url}/metrics").text
    assert 'megacity_route_decisions_total{policy="cache_aware",reason="affinity"}' in metrics
    assert 'megacity_route_decisions_total{policy="cache_aware",reason="moved"}' in metrics
    assert "megacity_node_tokens_in_flight" in metrics


def test_session_header_and_user_field_name_the_conversation(cluster: Cluster) -> None:
    first = cluster.client(**{"X-Zone": "edu", "X-Session-Id": "sess-42"})
    nodes = set()
    for text in ("one", "two", "three", "four"):  # different prompts, one session
        raw = first.chat.completions.with_raw_response.create(
            model="kr-14b", messages=[{"role": "user", "content": text}]
        )
        raw.parse()
        nodes.add(raw.headers["X-MegaCity-Node"])
    assert len(nodes) == 1
    plain = cluster.client(**{"X-Zone": "edu"})
    users = set()
    for text in ("five", "six", "seven"):
        raw = plain.chat.completions.with_raw_response.create(
            model="kr-14b", messages=[{"role": "user", "content": text}], user="learner-7"
        )
        raw.parse()
        users.add(raw.headers["X-MegaCity-Node"])
    assert len(users) == 1


def test_a_completion_without_a_key_is_least_loaded(cluster: Cluster) -> None:
    resp = httpx.post(
        f"{cluster.url}/v1/completions",
        json={"model": "kr-14b", "prompt": "Once upon a time"},
        headers={"X-Zone": "edu"},
    )
    assert resp.status_code == 200
    assert resp.headers["X-MegaCity-Route"] == "cache_aware; reason=no_key"

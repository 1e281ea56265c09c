"""Dead, hung, failing and full nodes: routed around, bounded, never a hang or a silent cut."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from tests.api.cluster import Cluster, start_cluster

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of its own: these tests kill and break nodes."""
    c = start_cluster(tmp_path, names=("seoul-a", "seoul-b", "tokyo", "cloud"))
    yield c
    c.stop()


def _chat(client: openai.OpenAI, model: str = "kr-14b") -> str:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=HI)
    raw.parse()
    return raw.headers["X-MegaCity-Node"]


def test_killing_a_node_mid_run_fails_no_request(fresh: Cluster) -> None:
    for node in ("seoul-a", "seoul-b"):
        fresh.nodes[node].configure(latency_ms=5)
    client = fresh.client(**{"X-Zone": "edu"})
    done: list[str] = []
    errors: list[BaseException] = []
    killed = threading.Event()

    def worker() -> None:
        for _ in range(40):
            try:
                done.append(_chat(client))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
            if len(done) >= 60 and not killed.is_set():
                killed.set()
                fresh.nodes["seoul-a"].kill()

    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(worker)
    assert killed.is_set()
    assert errors == []
    assert len(done) == 320
    after = done[-100:]
    assert "seoul-a" not in after  # the breaker / health probe took it out
    assert set(after) == {"seoul-b"}  # still the same region; cloud not needed


def test_hung_node_is_routed_around_within_the_timeout(fresh: Cluster) -> None:
    fresh.nodes["seoul-a"].configure(fail="hang")
    client = fresh.client(**{"X-Zone": "edu"})
    durations = []
    for _ in range(6):
        started = time.monotonic()
        assert _chat(client) == "seoul-b"
        durations.append(time.monotonic() - started)
    # first-byte timeout is 1 s: a request that met the hung node took ~1 s, never more
    assert max(durations) < 2.0
    # after 3 failures the breaker opens: later requests don't wait on the hung node
    assert durations[-1] < 0.5
    metrics = httpx.get(f"{fresh.url}/metrics").text
    assert 'megacity_upstream_errors_total{kind="timeout",node="seoul-a"}' in metrics
    assert 'megacity_node_breaker_state{node="seoul-a"} 2.0' in metrics


def test_5xx_before_first_byte_retries_on_another_node(fresh: Cluster) -> None:
    fresh.nodes["seoul-a"].configure(fail="500")
    fresh.nodes["seoul-b"].configure(fail="500")
    client = fresh.client(**{"X-Zone": "edu"})
    # both Seoul nodes fail: one retry lands on... the other Seoul node, then 502
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="kr-14b", messages=HI)
    assert info.value.status_code == 502
    fresh.nodes["seoul-b"].configure(fail="none")
    nodes = {_chat(client) for _ in range(6)}
    assert nodes == {"seoul-b"}
    metrics = httpx.get(f"{fresh.url}/metrics").text
    assert 'megacity_failovers_total{from_node="seoul-a",model="kr-14b"}' in metrics


def test_cloud_is_the_last_resort(fresh: Cluster) -> None:
    client = fresh.client(**{"X-Zone": "edu"})
    assert _chat(client, "big-34b") in ("seoul-a", "seoul-b")
    fresh.nodes["seoul-a"].configure(fail="unhealthy")
    fresh.nodes["seoul-b"].configure(fail="unhealthy")
    time.sleep(0.6)  # a few health rounds (0.2 s)
    assert _chat(client, "big-34b") == "cloud"
    assert _chat(client, "small-7b") == "tokyo"  # another region before the cloud
    ready = httpx.get(f"{fresh.url}/readyz").json()
    assert ready["engines"]["llm"]["nodes"]["seoul-a"]["healthy"] is False


def test_broken_stream_ends_with_an_error_event(fresh: Cluster) -> None:
    for node in ("seoul-a", "seoul-b"):
        fresh.nodes[node].configure(fail="break_stream", chunks=10)
    client = fresh.client(**{"X-Zone": "edu"})
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="kr-14b", messages=HI, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert len(received) == 5  # the chunks before the break arrived, then the error
    assert "stopped mid-stream" in str(info.value.message)


def test_client_disconnect_cancels_the_upstream_request(fresh: Cluster) -> None:
    for node in fresh.nodes.values():
        node.configure(chunk_ms=50, chunks=100)
    with (
        httpx.Client(base_url=fresh.url, timeout=10) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            headers={"X-Zone": "edu"},
            json={"model": "kr-14b", "messages": HI, "stream": True},
        ) as response,
    ):
        node = fresh.nodes[response.headers["X-MegaCity-Node"]]
        lines = response.iter_lines()
        next(lines)
        next(lines)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        stats = node.stats()
        if stats["cancelled"] == 1 and stats["in_flight"] == 0:
            break
        time.sleep(0.1)
    assert (stats["cancelled"], stats["completed"], stats["in_flight"]) == (1, 0, 0)


def test_all_nodes_full_waits_then_503_with_retry_after(tmp_path: Path) -> None:
    c = start_cluster(tmp_path, names=("seoul-a", "seoul-b", "tokyo", "cloud"), max_concurrency=1)
    try:
        for node in c.nodes.values():
            node.configure(latency_ms=800)  # under the 1 s first-byte timeout
        results: list[httpx.Response] = []

        def call() -> None:
            with httpx.Client(base_url=c.url, timeout=10) as http:
                results.append(
                    http.post(
                        "/v1/chat/completions",
                        headers={"X-Zone": "edu"},
                        json={"model": "big-34b", "messages": HI},
                    )
                )

        # big-34b is on seoul-a, seoul-b and cloud: three slots, four callers
        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join()
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 200, 200, 503]
        refused = next(r for r in results if r.status_code == 503)
        assert refused.json()["error"]["code"] == "no_capacity"
        assert refused.headers["Retry-After"] == "1"
        served = {r.headers["X-MegaCity-Node"] for r in results if r.status_code == 200}
        assert served == {"seoul-a", "seoul-b", "cloud"}
    finally:
        c.stop()


def test_client_leaving_a_non_streaming_request_cancels_it_upstream(fresh: Cluster) -> None:
    for node in fresh.nodes.values():
        node.configure(latency_ms=800)
    with (
        httpx.Client(base_url=fresh.url, timeout=0.2) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.post(
            "/v1/chat/completions",
            headers={"X-Zone": "edu"},
            json={"model": "kr-14b", "messages": HI},
        )
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        stats = [n.stats() for n in fresh.nodes.values()]
        if sum(s["cancelled"] for s in stats) == 1 and all(s["in_flight"] == 0 for s in stats):
            break
        time.sleep(0.05)
    assert sum(s["cancelled"] for s in stats) == 1
    assert sum(s["completed"] for s in stats) == 0
    in_flight = httpx.get(f"{fresh.url}/metrics").text
    assert 'megacity_node_in_flight{node="seoul-a"} 0.0' in in_flight
    assert 'megacity_node_in_flight{node="seoul-b"} 0.0' in in_flight
    assert sum(s["in_flight"] for s in stats) == 0
    client = fresh.client(**{"X-Zone": "edu"})  # the router serves on, nothing left stuck
    for node in fresh.nodes.values():
        node.configure(latency_ms=0)
    assert _chat(client) in fresh.nodes

"""Remote speech nodes (`megacity engine speech`) behind the router: the node's own OpenAI API,
balancing across two nodes, bad audio passed on unchanged, failover when a node dies."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from megacity.testing import RouterProcess, SpeechNodeProcess
from tests.api.speech_cluster import client, speech_node, start_router
from tests.audio import FAST_NODE_ARGS, WHISPER_MODEL, shared_refs, shared_wav

TRANSCRIBE = "/v1/audio/transcriptions"


@dataclass
class SpeechCluster:
    router: RouterProcess
    nodes: dict[str, SpeechNodeProcess]

    def stop(self) -> None:
        self.router.stop()
        for node in self.nodes.values():
            node.stop()


def start_speech_cluster(
    tmp: Path,
    names: tuple[str, ...] = ("speech-a", "speech-b"),
    local: bool = False,
    broken: str | None = None,
) -> SpeechCluster:
    nodes = {n: SpeechNodeProcess(n, WHISPER_MODEL, None, *FAST_NODE_ARGS) for n in names}
    if broken is not None:  # lazy loading, so it looks healthy until its first request
        args = ("--no-preload", *FAST_NODE_ARGS)
        nodes[broken] = SpeechNodeProcess(broken, "/nonexistent/model", None, *args)
    started: list[SpeechNodeProcess] = []
    try:
        for node in nodes.values():
            started.append(node)
            node.start()
        topology = [speech_node(n, node.url) for n, node in nodes.items()]
        env = {}
        if local:  # an in-process node whose model cannot load, beside the remote ones
            topology.append(speech_node("speech-local", "local"))
            env["MEGACITY_SPEECH_MODEL"] = "/nonexistent/model"
        router = start_router(tmp, topology, env)
    except BaseException:
        for node in started:
            node.stop()
        raise
    return SpeechCluster(router, nodes)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechCluster]:
    c = start_speech_cluster(tmp_path_factory.mktemp("speech-nodes"))
    yield c
    c.stop()


def _transcribe(url: str, name: str = "en1", **fields: str) -> httpx.Response:
    return httpx.post(
        url + TRANSCRIBE,
        files={"file": (f"{name}.wav", shared_wav(name), "audio/wav")},
        data={"model": "whisper-1", **fields},
        timeout=30,
    )


def test_a_node_serves_the_openai_api_itself(cluster: SpeechCluster) -> None:
    node = cluster.nodes["speech-a"]
    result = client(node.url).audio.transcriptions.create(
        file=("en1.wav", shared_wav("en1")),
        model="whisper-1",
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.words and result.segments
    health = httpx.get(node.url + "/health").json()
    assert health["status"] == "ok" and health["model"] == WHISPER_MODEL
    metrics = httpx.get(node.url + "/metrics").text
    assert "megacity_engine_requests_running 0.0" in metrics
    assert "megacity_engine_model_loaded 1.0" in metrics
    r = httpx.post(node.url + TRANSCRIBE, files={"file": ("x.bin", b"not audio at all" * 30)})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_audio"


def test_router_balances_across_two_nodes(cluster: SpeechCluster) -> None:
    seen: dict[str, int] = {}
    for _ in range(8):
        r = _transcribe(cluster.router.url, response_format="json")
        assert r.status_code == 200, r.text
        node = r.headers["X-MegaCity-Node"]
        seen[node] = seen.get(node, 0) + 1
    assert set(seen) == {"speech-a", "speech-b"}
    assert min(seen.values()) >= 3


def test_concurrent_requests_use_both_nodes(cluster: SpeechCluster) -> None:
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: _transcribe(cluster.router.url), range(12)))
    assert all(r.status_code == 200 for r in responses)
    assert {r.headers["X-MegaCity-Node"] for r in responses} == {"speech-a", "speech-b"}


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt", "verbose_json"])
def test_formats_are_rendered_from_the_node_timings(cluster: SpeechCluster, fmt: str) -> None:
    r = _transcribe(cluster.router.url, "ko1", response_format=fmt, language="ko")
    assert r.status_code == 200, r.text
    if fmt == "verbose_json":
        assert r.json()["language"] == "korean" and r.json()["segments"]
    elif fmt == "vtt":
        assert r.text.startswith("WEBVTT")
    elif fmt == "srt":
        assert r.text.startswith("1\n")


def test_analyze_through_a_remote_node_has_word_timings(cluster: SpeechCluster) -> None:
    language, text = shared_refs()["en3"]
    r = httpx.post(
        cluster.router.url + "/api/v1/kzone/voice/analyze",
        files={"file": ("en3.wav", shared_wav("en3"))},
        data={"reference_text": text, "language": language},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["X-MegaCity-Node"] in cluster.nodes
    body = r.json()
    heard = [w for w in body["words"] if w["error_type"] != "omission"]
    assert heard and all(w["start"] is not None and w["confidence"] is not None for w in heard)
    assert body["scores"]["fluency"] is not None


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_audio"),
        (b"plain text, no sound here\n" * 40, 415, "unsupported_audio"),
        (shared_wav("en1")[:44], 422, "corrupt_audio"),
    ],
)
def test_a_nodes_4xx_is_passed_on_without_failover(
    cluster: SpeechCluster, data: bytes, status: int, code: str
) -> None:
    r = httpx.post(cluster.router.url + TRANSCRIBE, files={"file": ("x.wav", data)}, timeout=30)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    metrics = httpx.get(cluster.router.url + "/metrics").text
    assert "megacity_failovers_total{" not in metrics


def test_killed_node_fails_no_request(tmp_path: Path) -> None:
    c = start_speech_cluster(tmp_path)
    try:
        assert _transcribe(c.router.url).status_code == 200
        c.nodes["speech-a"].kill()
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda _: _transcribe(c.router.url), range(12)))
        assert [r.status_code for r in responses] == [200] * 12
        assert {r.headers["X-MegaCity-Node"] for r in responses} == {"speech-b"}
        metrics = httpx.get(c.router.url + "/metrics").text
        assert 'megacity_node_healthy{node="speech-a"} 0.0' in metrics
        c.nodes["speech-b"].kill()
        r = _transcribe(c.router.url)
        assert r.status_code in (502, 503)
        assert r.json()["error"]["code"] in {"upstream_failed", "no_healthy_node"}
    finally:
        c.stop()


def test_local_node_without_its_model_fails_over_to_a_remote_one(tmp_path: Path) -> None:
    c = start_speech_cluster(tmp_path, names=("speech-a",), local=True)
    try:
        for _ in range(6):
            r = _transcribe(c.router.url)
            assert r.status_code == 200, r.text
            assert r.headers["X-MegaCity-Node"] == "speech-a"
        metrics = httpx.get(c.router.url + "/metrics").text
        assert 'megacity_failovers_total{from_node="speech-local"' in metrics
    finally:
        c.stop()


def test_a_node_answering_5xx_is_retried_on_another(tmp_path: Path) -> None:
    c = start_speech_cluster(tmp_path, names=("speech-a",), broken="speech-bad")
    try:
        assert httpx.get(c.nodes["speech-bad"].url + "/health").status_code == 200
        responses = [_transcribe(c.router.url) for _ in range(6)]
        assert [r.status_code for r in responses] == [200] * 6
        assert {r.headers["X-MegaCity-Node"] for r in responses} == {"speech-a"}
        metrics = httpx.get(c.router.url + "/metrics").text
        assert 'megacity_failovers_total{from_node="speech-bad"' in metrics
        assert 'megacity_upstream_errors_total{kind="status",node="speech-bad"}' in metrics
        # the failed load shows in the node's /health, so the router stops sending to it
        assert httpx.get(c.nodes["speech-bad"].url + "/health").status_code == 503
    finally:
        c.stop()

"""Bad input gets the envelope; registry activation; tutor strategies; metrics; logs; readiness."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.cluster import ADMIN_TOKEN, Cluster

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def _envelope(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error  # type: ignore[no-any-return]


@pytest.fixture
def http(cluster: Cluster) -> httpx.Client:
    with httpx.Client(base_url=cluster.url, headers={"X-Zone": "edu"}, timeout=10) as client:
        yield client  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b"", 400, "invalid_json", None),
        (b"[1, 2]", 400, "invalid_json", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "invalid_request", "model"),
        (b'{"model": "kr-14b"}', 400, "invalid_request", "messages"),
        (b'{"model": "kr-14b", "messages": []}', 400, "invalid_request", "messages"),
        (b'{"model": "kr-14b", "messages": [{"role": "robot", "content": "x"}]}', 400, None, None),
        (
            b'{"model": "kr-14b", "messages": [{"role": "user"}], "temperature": 9}',
            400,
            None,
            "temperature",
        ),
        (
            b'{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}',
            404,
            "model_not_found",
            "model",
        ),
        (
            b'{"model": 5, "messages": [{"role": "user", "content": "hi"}]}',
            400,
            "invalid_request",
            "model",
        ),
    ],
)
def test_bad_chat_bodies(
    http: httpx.Client, body: bytes, status: int, code: str | None, param: str | None
) -> None:
    r = http.post(CHAT, content=body, headers={"Content-Type": "application/json"})
    error = _envelope(r, status, code)
    if param is not None:
        assert error["param"] == param


def test_bad_headers_and_limits(http: httpx.Client) -> None:
    body = {"model": "kr-14b", "messages": HI}
    _envelope(http.post(CHAT, json=body, headers={"X-Zone": "mars"}), 400, "unknown_zone")
    _envelope(http.post(CHAT, json=body, headers={"X-Locale": "fr"}), 400, "unsupported_locale")
    _envelope(http.post(CHAT, json=body, headers={"X-Region": "moon"}), 400, "unknown_region")
    _envelope(http.post(CHAT, json=body, headers={"X-Zone": "a b;c"}), 400, "invalid_header")
    big = {"model": "kr-14b", "messages": [{"role": "user", "content": "x" * 70_000}]}
    _envelope(http.post(CHAT, json=big), 413, "payload_too_large")
    _envelope(
        http.post(CHAT, content=b"model=x", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    _envelope(http.get(CHAT), 405)
    _envelope(http.get("/v1/nothing-here"), 404, "not_found")
    _envelope(http.post("/v1/completions", json={"model": "kr-14b"}), 400, "invalid_request")


def test_chunked_body_over_limit_is_refused(http: httpx.Client) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"model": "kr-14b", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}]}'

    r = http.post(CHAT, content=chunks(), headers={"Content-Type": "application/json"})
    _envelope(r, 413, "payload_too_large")


def test_registry_and_activation(cluster: Cluster, http: httpx.Client) -> None:
    models = {m["name"]: m for m in http.get("/api/v1/models/registry").json()["models"]}
    assert models["kr-14b"]["active_version"] == "v1"
    assert [v["version"] for v in models["kr-14b"]["versions"]] == ["v1", "v2"]
    url = "/api/v1/models/kr-14b/activate"
    _envelope(http.post(url, json={"version": "v2"}), 401, "unauthorized")
    bad = {"Authorization": "Bearer wrong"}
    _envelope(http.post(url, json={"version": "v2"}, headers=bad), 403, "forbidden")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    _envelope(http.post(url, json={"version": "v9"}, headers=admin), 400, "unknown_version")
    _envelope(http.post("/api/v1/models/nope/activate", json={"version": "v1"}, headers=admin), 404)
    try:
        r = http.post(url, json={"version": "v2"}, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["served_as"] == "kr-14b-v2"
        answer = http.post(CHAT, json={"model": "kr-tutor", "messages": HI})
        assert answer.json()["choices"][0]["message"]["content"].endswith("kr-14b-v2")
        assert answer.headers["X-MegaCity-Version"] == "v2"
    finally:
        http.post(url, json={"version": "v1"}, headers=admin)
    answer = http.post(CHAT, json={"model": "kr-14b", "messages": HI})
    assert answer.json()["choices"][0]["message"]["content"].endswith("kr-14b-v1")


def test_tutor_strategies(cluster: Cluster, http: httpx.Client) -> None:
    r = http.post(
        "/api/v1/tutor/essay_feedback",
        json={"essay": "인공지능은 교육을 바꾼다.", "topic": "AI와 교육", "stream": False},
    )
    assert r.status_code == 200, r.text
    assert r.headers["X-MegaCity-Strategy"] == "essay_feedback"
    assert r.headers["X-MegaCity-Tier"] in ("14b", "34b", "70b")  # the strategy's floor is 14b
    node = cluster.nodes[r.headers["X-MegaCity-Node"]]
    sent = node.stats()["last_body"]["messages"]
    assert sent[0]["role"] == "system" and "논리" in sent[0]["content"]
    assert "인공지능은 교육을 바꾼다." in sent[1]["content"]
    en = http.post(
        "/api/v1/tutor/math_tutor",
        json={"problem": "2x + 3 = 7", "answer": "x = 5"},
        headers={"X-Locale": "en"},
    )
    assert en.status_code == 200, en.text
    sent = cluster.nodes[en.headers["X-MegaCity-Node"]].stats()["last_body"]["messages"]
    assert "math tutor" in sent[0]["content"]
    _envelope(
        http.post("/api/v1/tutor/math_tutor", json={"problem": "1+1"}), 400, "invalid_request"
    )
    _envelope(http.post("/api/v1/tutor/essay_feedback", json={"essay": "x", "bogus": 1}), 400)
    _envelope(http.post("/api/v1/tutor/poetry", json={"text": "x"}), 404, "unknown_strategy")


def test_metrics_readiness_and_logs(cluster: Cluster, http: httpx.Client) -> None:
    secret = "the-prompt-text-must-not-be-logged-7f3a"
    r = http.post(CHAT, json={"model": "kr-14b", "messages": [{"role": "user", "content": secret}]})
    assert r.status_code == 200
    text = http.get("/metrics").text
    assert 'megacity_requests_total{engine="llm",model="kr-14b"' in text
    assert 'zone="edu"' in text and 'status="200"' in text
    assert "megacity_request_duration_seconds_bucket" in text
    assert 'megacity_node_in_flight{node="seoul-a"}' in text
    assert 'megacity_node_breaker_state{node="cloud"} 0.0' in text
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["engines"]["llm"]["ready"] is True
    assert http.get("/healthz").json() == {"status": "ok"}
    logs = cluster.router.output()
    assert secret not in logs
    assert r.headers["x-request-id"] in logs

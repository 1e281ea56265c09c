"""Feedback and the bias report through a real router process (uvicorn) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
import yaml

from megacity.api.safety_schemas import DimensionView, EngineName, Scope
from megacity.config.topology import Engine
from megacity.db.consents import SCOPES
from megacity.db.feedback import DIMENSIONS
from megacity.safety.bias import two_proportion_test
from megacity.testing import RouterProcess

FEEDBACK = "/api/v1/ai/feedback"
REPORT = "/api/v1/ai/bias-report"


def safety_topology() -> dict[str, Any]:
    """Two zones in front of one (unreachable) LLM node: these endpoints need no engine."""
    return {
        "regions": [{"name": "seoul"}],
        "default_zone": "edu",
        "nodes": [
            {
                "name": "llm",
                "engine": "llm",
                "url": "http://127.0.0.1:9",
                "models": ["chat-7b"],
                "region": "seoul",
            }
        ],
        "models": [{"name": "chat-7b", "tier": "7b"}],
        "zones": {"edu": {"engines": {"llm": "chat-7b"}}, "ktube": {"engines": {"llm": "chat-7b"}}},
    }


def start_safety_router(tmp: Path) -> RouterProcess:
    config = tmp / "topology.yaml"
    config.write_text(yaml.safe_dump(safety_topology()), encoding="utf-8")
    env = {
        "MEGACITY_DATA_DIR": str(tmp / "data"),
        "MEGACITY_AUTH_ENABLED": "false",  # auth has its own tests (test_auth.py)
        "MEGACITY_LIMITS": '{"enabled": false}',  # one teacher posts hundreds of rows here
        "MEGACITY_HEALTH_INTERVAL_S": "5",
    }
    router = RouterProcess(str(config), env=env)
    router.start()
    return router


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    router = start_safety_router(tmp_path_factory.mktemp("feedback"))
    try:
        with httpx.Client(base_url=router.url, timeout=10) as client:
            yield client
    finally:
        router.stop()


def _error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"age_band": "11-12"}, "age_band"),
        ({"note": "she sounded tired"}, "note"),  # no free text
        ({"result_id": "job 1"}, "result_id"),
        ({"result_id": "x" * 129}, "result_id"),
        ({"result_id": ""}, "result_id"),
        ({"l1_language": "KO"}, "l1_language"),
        ({"l1_language": "kore"}, "l1_language"),
        ({"region": "Seoul City"}, "region"),
        ({"region": "a" * 33}, "region"),
        ({"gender": "other"}, "gender"),
        ({"engine": "gpu"}, "engine"),
        ({"is_correct": "yes"}, "is_correct"),
        ({"is_correct": None}, "is_correct"),
    ],
)
def test_bad_feedback_is_refused(http: httpx.Client, changes: dict[str, Any], param: str) -> None:
    body = {"result_id": "job-1", "is_correct": True, **changes}
    error = _error(http.post(FEEDBACK, json=body), 400, "invalid_request")
    assert error["param"] == param


def test_bad_requests_get_the_envelope(http: httpx.Client) -> None:
    ok = {"result_id": "job-1", "is_correct": True}
    _error(http.post(FEEDBACK, json=ok, headers={"X-Zone": "mars"}), 400, "unknown_zone")
    _error(http.post(FEEDBACK, content=b"{oops", headers={"Content-Type": "application/json"}), 400)
    _error(http.post(FEEDBACK, json={**ok, "result_id": "x" * 5000}), 413)
    _error(http.post(FEEDBACK, json={"is_correct": True}), 400, "invalid_request")


def test_feedback_is_stored(http: httpx.Client) -> None:
    body = {
        "result_id": "job-42",
        "is_correct": False,
        "engine": "speech",
        "age_band": "65+",
        "l1_language": "vie",
        "region": "kr-seoul",
        "gender": "undisclosed",
    }
    r = http.post(FEEDBACK, json=body, headers={"X-Zone": "ktube", "X-User-Id": "learner-7"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) == {"id", "result_id", "created_at"}
    assert created["result_id"] == "job-42" and len(created["id"]) == 32
    report = http.get(REPORT, params={"zone": "ktube", "engine": "speech"}).json()
    assert report["overall"] == {"n": 1, "correct": 0, "accuracy": 0.0}
    groups = {d["dimension"]: d["groups"] for d in report["dimensions"]}
    assert [g["group"] for g in groups["l1_language"]] == ["vie"]
    assert [g["group"] for g in groups["age_band"]] == ["65+"]


def _synthetic_set() -> list[dict[str, Any]]:
    """410 judgements: ko 90 % right, vi 70 %, th (10 answers) 20 %; the other buckets are
    spread evenly over right and wrong, so only the first language differs."""
    rows: list[dict[str, Any]] = []
    for l1, right, wrong in (("ko", 180, 20), ("vi", 140, 60), ("th", 2, 8)):
        for outcomes in ([True] * right, [False] * wrong):
            for i, correct in enumerate(outcomes):
                row: dict[str, Any] = {
                    "result_id": f"{l1}-{correct}-{i}",
                    "is_correct": correct,
                    "engine": "llm",
                    "l1_language": l1,
                    "age_band": ("13-15", "16-18")[i % 2],
                    "region": ("kr-seoul", "kr-busan")[(i // 2) % 2],
                }
                if i % 3 == 0:
                    row["gender"] = ("female", "male")[(i // 3) % 2]
                rows.append(row)
    return rows


def test_the_bias_report_flags_exactly_the_disparate_group(http: httpx.Client) -> None:
    rows = _synthetic_set()
    for row in rows:
        r = http.post(FEEDBACK, json=row, headers={"X-User-Id": "teacher-1"})
        assert r.status_code == 201, r.text
    r = http.get(REPORT, params={"engine": "llm", "zone": "edu"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["overall"] == {"n": 410, "correct": 322, "accuracy": pytest.approx(322 / 410)}
    assert report["parameters"]["min_samples"] == 30 and report["parameters"]["zone"] == "edu"
    dims = {d["dimension"]: d for d in report["dimensions"]}
    assert list(dims) == ["age_band", "l1_language", "region", "gender"]
    assert report["flagged"] and dims["l1_language"]["flagged"]
    assert [name for name, d in dims.items() if d["flagged"]] == ["l1_language"]
    l1 = {g["group"]: g for g in dims["l1_language"]["groups"]}
    assert l1["vi"]["significant"] and l1["vi"]["disparity_ratio"] == pytest.approx(0.7 / 0.9)
    z, p = two_proportion_test(140, 200, 182, 210)  # vi against ko + th
    assert l1["vi"]["z"] == pytest.approx(z) and l1["vi"]["p_value"] == pytest.approx(p)
    assert z < 0 and p < 1e-4
    assert l1["th"] == {
        "group": "th",
        "n": 10,
        "correct": 2,
        "accuracy": pytest.approx(0.2),
        "disparity_ratio": None,
        "z": None,
        "p_value": None,
        "significant": False,
        "tested": False,
    }
    assert dims["l1_language"]["unreported"] == 0
    gender = dims["gender"]
    assert gender["unreported"] == 410 - sum(g["n"] for g in gender["groups"]) > 0
    assert not any(g["significant"] for g in dims["age_band"]["groups"])
    # A narrower window, and another zone, see none of it.
    later = http.get(REPORT, params={"since": "2999-01-01T00:00:00Z"}).json()
    assert later["overall"]["n"] == 0 and later["overall"]["accuracy"] is None
    assert not later["flagged"]
    assert http.get(REPORT, params={"zone": "ktube", "engine": "llm"}).json()["overall"]["n"] == 0
    # Stricter gating: with 250 answers needed per group, nothing is tested.
    strict = http.get(REPORT, params={"engine": "llm", "min_samples": 250}).json()
    assert not strict["flagged"]


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        (
            {"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
            "invalid_window",
            "since",
        ),
        (
            {"since": "2025-01-01T00:00:00", "until": "2025-01-01T00:00:00+00:00"},
            "invalid_window",
            "since",
        ),
        ({"since": "0001-01-01T00:00:00+05:00"}, "invalid_window", "since"),
        ({"since": "last tuesday"}, "invalid_request", "since"),
        ({"alpha": "0"}, "invalid_request", "alpha"),
        ({"alpha": "0.9"}, "invalid_request", "alpha"),
        ({"min_samples": "0"}, "invalid_request", "min_samples"),
        ({"engine": "gpu"}, "invalid_request", "engine"),
        ({"zone": "mars"}, "unknown_zone", "zone"),
        ({"zone": "a b"}, "invalid_request", "zone"),
    ],
)
def test_bad_report_parameters_are_refused(
    http: httpx.Client, params: dict[str, str], code: str, param: str
) -> None:
    error = _error(http.get(REPORT, params=params), 400, code)
    assert error["param"] == param


def test_the_openapi_document_describes_the_routes(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    post = paths[FEEDBACK]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False and "is_correct" in body["required"]
    assert "201" in post["responses"] and "400" in post["responses"]
    assert "200" in paths[REPORT]["get"]["responses"]


def test_the_schema_lists_agree_with_the_code() -> None:
    assert get_args(EngineName) == tuple(engine.value for engine in Engine)
    assert get_args(Scope) == SCOPES
    assert get_args(DimensionView.model_fields["dimension"].annotation) == DIMENSIONS

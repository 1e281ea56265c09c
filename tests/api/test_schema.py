"""Schemathesis against the real router (uvicorn) and its own OpenAPI document, auth on.

Every operation of /openapi.json gets a bounded, derandomised number of generated
requests (positive: data that fits the schema; negative: data that does not) with an
ai:admin token. None may answer a server error, and every 4xx must be the one error
envelope {"error": {"message", "type", "code"}}. The speech, pose, image and TTS engines
are deliberately absent (remote nodes on a closed port), so the routes that reach them
may answer 502, 503 or 504 (an engine that cannot be reached), never 500. /readyz answers
503 with the nodes' states while they are down: that is its job, not an error envelope.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.core.result import Ok

from megacity.testing import AuthKit, RouterProcess, StandinProcess
from tests.api.cluster import ROUTER_ENV, topology

EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}  # per operation
ABSENT_ENGINE = {502, 503, 504}  # what a route of an unreachable engine may answer
ENGINE_PATHS = ("/v1/audio/", "/v1/images/", "/api/v1/kzone/")  # non-LLM engines
DEAD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port


@dataclass(frozen=True)
class Failure:
    operation: str
    status: int
    detail: str


@dataclass
class Tally:
    """What the run saw: cases per operation, statuses, and the answers that broke a rule."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)


@dataclass
class Router:
    url: str
    headers: dict[str, str]
    process: RouterProcess


def _schema_topology(llm_url: str) -> dict[str, Any]:
    """tests/api/cluster.py's LLM topology on one stand-in, plus absent non-LLM engines."""
    topo = topology(dict.fromkeys(("seoul-a", "seoul-b", "tokyo", "cloud"), llm_url))
    engines = {"speech": "whisper-x", "pose": "pose-x", "image": "image-x", "tts": "tts-x"}
    for engine, model in engines.items():
        topo["models"].append({"name": model, "engine": engine})
        node = {"name": f"{engine}-node", "engine": engine, "url": DEAD_URL, "region": "seoul"}
        topo["nodes"].append({**node, "models": [model]})
        topo["zones"]["edu"]["engines"][engine] = model
    return topo


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    tmp = tmp_path_factory.mktemp("schema")
    kit = AuthKit(tmp / "keys", "seoul")
    llm = StandinProcess("llm")
    llm.start()
    config = tmp / "topology.yaml"
    config.write_text(yaml.safe_dump(_schema_topology(llm.url)), encoding="utf-8")
    env = {
        **ROUTER_ENV,
        **kit.env(),
        "MEGACITY_DATA_DIR": str(tmp / "data"),
        "MEGACITY_JOBS_MAX_ATTEMPTS": "1",
        "MEGACITY_GENERATION_WAIT_S": "1",
    }
    process = RouterProcess(str(config), env=env)
    try:
        process.start()
        subject = f"schema-{secrets.token_hex(4)}"
        headers = kit.headers(subject, scopes=("ai:use", "ai:admin"), ttl_s=3600)
        yield Router(process.url, headers, process)
    finally:
        process.stop()
        llm.stop()


def _check(case: Case, resp: Response, tally: Tally) -> None:
    """Record a broken rule (the first case of each operation and status)."""
    label, status = case.operation.label, resp.status_code
    tally.statuses[status] += 1
    if case.operation.path == "/readyz" or status < 400:
        return
    if any(f.operation == label and f.status == status for f in tally.failures):
        return
    if status >= 500 and not (status in ABSENT_ENGINE and _reaches_engine(case.operation)):
        curl = case.as_curl_command()
        tally.failures.append(Failure(label, status, f"{resp.text[:200]}\n  {curl[:600]}"))
        return
    try:
        error = resp.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["type"], str) and error["type"]
        assert "code" in error
    except (ValueError, KeyError, TypeError, AssertionError):
        tally.failures.append(Failure(label, status, f"not the envelope: {resp.text[:300]}"))


def _reaches_engine(operation: APIOperation) -> bool:
    """Whether the route reaches a non-LLM engine of the topology (all absent here)."""
    return operation.path.startswith(ENGINE_PATHS)


def _run_operation(
    operation: APIOperation, mode: GenerationMode, router: Router, tally: Tally
) -> None:
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        resp = case.call(base_url=router.url, session=session, headers=router.headers, timeout=10)
        tally.cases[operation.label] += 1
        _check(case, resp, tally)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # Nothing in this operation can be made invalid (no parameters, no body).


def _crashes(log: str) -> Counter[str]:
    """ "<exception> at <file>" of every traceback the router logged as an unhandled error."""
    found: Counter[str] = Counter()
    for line in log.splitlines():
        if line.startswith("{") and '"unhandled error"' in line:
            exc = str(json.loads(line).get("exc", ""))
            files = [f.split("site-packages/")[-1] for f in re.findall(r'File "([^"]+)"', exc)]
            kind = exc.strip().splitlines()[-1].split(":")[0] if exc.strip() else "?"
            found[f"{kind} at {files[-1] if files else '?'}"] += 1
    return found


def test_no_server_errors_and_one_error_envelope(router: Router) -> None:
    url = f"{router.url}/openapi.json"
    schema = schemathesis.openapi.from_url(url, headers=dict(router.headers), timeout=10)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the router's OpenAPI document has invalid operations"
    tally = Tally()
    for operation in operations:
        for mode in EXAMPLES:
            _run_operation(operation, mode, router, tally)
    print(
        f"\nschemathesis: {len(operations)} operations, {sum(tally.cases.values())} cases, "
        f"statuses {dict(sorted(tally.statuses.items()))}"
    )
    assert len(operations) >= 25
    assert set(tally.cases) == {op.label for op in operations}  # every operation was called

    crashes = _crashes(router.process.output())
    report = "\n".join(f"{f.operation} -> {f.status}: {f.detail}" for f in tally.failures)
    assert not tally.failures, f"{report}\nrouter tracebacks: {dict(crashes)}"
    assert not crashes, dict(crashes)


def test_a_korean_upload_filename_is_no_server_error(router: Router) -> None:
    files = {"file": ("녹음.wav", b"RIFF0000WAVE", "audio/wav")}
    resp = httpx.post(
        f"{router.url}/v1/audio/transcriptions", files=files, headers=router.headers, timeout=10
    )
    assert resp.status_code < 500 or resp.status_code in ABSENT_ENGINE, resp.text


# The operations the fuzzer once found documenting far more than their validation takes;
# what fits their documented schema must now get past validation (a 400 would mean the
# document still promises something the router refuses). Safety refusals of the text are
# judgements on content, which no schema can state.
DOCUMENTED_EXACTLY = (
    "/v1/audio/transcriptions",
    "/api/v1/kzone/voice/analyze",
    "/api/v1/kzone/dance/analyze",
    "/api/v1/tutor/math_tutor",
)
CONTENT_REFUSALS = {"prompt_rejected", "content_rejected", "self_harm_risk"}


def test_what_the_document_accepts_passes_validation(router: Router) -> None:
    url = f"{router.url}/openapi.json"
    schema = schemathesis.openapi.from_url(url, headers=dict(router.headers), timeout=10)
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    chosen = [op for op in operations if op.path in DOCUMENTED_EXACTLY]
    assert len(chosen) == len(DOCUMENTED_EXACTLY)
    refused: list[str] = []
    for operation in chosen:
        _positive_run(operation, router, refused)
    assert not refused, "\n".join(refused[:10])


def _positive_run(operation: APIOperation, router: Router, refused: list[str]) -> None:
    session = requests.Session()

    @settings(
        max_examples=25,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        resp = case.call(base_url=router.url, session=session, headers=router.headers, timeout=10)
        if resp.status_code == 400 and resp.json()["error"]["code"] not in CONTENT_REFUSALS:
            refused.append(f"{operation.label}: {resp.text[:200]}")

    run()

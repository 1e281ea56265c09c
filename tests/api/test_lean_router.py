"""A lean router: an LLM-only topology loads no engine library, and `--workers N` serves."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from megacity.testing import ServerProcess, StandinProcess, free_port
from tests.api.cluster import ROUTER_ENV

HEAVY = (
    "numpy",
    "scipy",
    "PIL",
    "cv2",
    "av",
    "sqlalchemy",
    "alembic",
    "boto3",
    "numba",
    "faster_whisper",
    "mediapipe",
    "torch",
    "transformers",
    "jinja2",
    "redis",
)


def _topology(url: str, *, speech: bool = False) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"name": "llm", "engine": "llm", "url": url, "models": ["m-7b"], "region": "r"}
    ]
    models: list[dict[str, Any]] = [{"name": "m-7b", "tier": "7b"}]
    if speech:
        nodes.append(
            {"name": "asr", "engine": "speech", "url": url, "models": ["asr"], "region": "r"}
        )
        models.append({"name": "asr", "engine": "speech"})
    return {
        "regions": [{"name": "r"}],
        "nodes": nodes,
        "models": models,
        "zones": {"z": {"engines": {"llm": "m-7b"}}},
        "default_zone": "z",
    }


_PROBE = textwrap.dedent(
    """
    import sys
    from fastapi.testclient import TestClient
    from megacity.api.app import create_app
    from megacity.config.settings import Settings

    settings = Settings.load(sys.argv[1], data_dir=sys.argv[2], auth_enabled=False)
    with TestClient(create_app(settings)) as client:  # runs the start-up, then shuts down
        assert client.get("/healthz").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        before = {m.split(".")[0] for m in sys.modules}
        assert client.get("/api/v1/jobs/0123456789abcdef0123456789abcdef").status_code == 404
    heavy = sorted(set(sys.argv[3].split(",")) & before)
    print("HEAVY=" + ",".join(heavy))
    print("DB=" + str("sqlalchemy" in sys.modules))
    """
)


def _probe(tmp_path: Path, topology: dict[str, Any]) -> tuple[list[str], bool]:
    config = tmp_path / "topology.yaml"
    config.write_text(yaml.safe_dump(topology), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(config), str(tmp_path / "var"), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    return [h for h in lines["HEAVY"].split(",") if h], lines["DB"] == "True"


def test_an_llm_only_topology_starts_without_engine_libraries(tmp_path: Path) -> None:
    heavy, db_used = _probe(tmp_path, _topology("http://127.0.0.1:9"))
    assert heavy == []  # started and served the OpenAPI document with none of them
    assert db_used  # … and the jobs route opened the database on first use
    assert (tmp_path / "var" / "megacity.db").exists()


def test_a_topology_with_other_engines_opens_its_state_at_start(tmp_path: Path) -> None:
    heavy, _ = _probe(tmp_path, _topology("http://127.0.0.1:9", speech=True))
    assert "sqlalchemy" in heavy  # migrated and the job worker started, as before


@pytest.fixture
def standin() -> Any:
    node = StandinProcess("llm").start()
    yield node
    node.stop()


def test_serve_with_two_workers(tmp_path: Path, standin: StandinProcess) -> None:
    config = tmp_path / "topology.yaml"
    config.write_text(yaml.safe_dump(_topology(standin.url)), encoding="utf-8")
    port = free_port()
    env = {**ROUTER_ENV, "MEGACITY_DATA_DIR": str(tmp_path / "var")}
    args = ["serve", "--config", str(config), "--port", str(port), "--workers", "2"]
    router = ServerProcess(args, port, env)
    router.start("/healthz", timeout_s=60)
    try:
        assert router.proc is not None
        children = Path(f"/proc/{router.proc.pid}/task/{router.proc.pid}/children")
        cmdlines = [Path(f"/proc/{c}/cmdline").read_bytes() for c in children.read_text().split()]
        assert sum(b"spawn_main" in c for c in cmdlines) == 2  # two worker processes
        body = {"model": "m-7b", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(10):
            resp = httpx.post(f"{router.url}/v1/chat/completions", json=body, timeout=15)
            assert resp.status_code == 200
            assert resp.headers["X-MegaCity-Node"] == "llm"
    finally:
        router.stop()

"""Generation set-ups for end-to-end tests: tiny real models, and routers in front of them.

The models are the tiny random-weight pipelines of tests/image_models.py and
tests/tts_models.py, built once per test session and loaded by the engines with the real
``from_pretrained``. Their pictures and sounds are noise, but every step of the path —
job, engine, watermark, store, URL — is the real one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from megacity.testing import RouterProcess
from tests.api.cluster import ROUTER_ENV

GENERATION_ENV = {
    **ROUTER_ENV,
    "MEGACITY_MAX_BODY_BYTES": str(1024 * 1024),
    "MEGACITY_GENERATION_WAIT_S": "60",
    "MEGACITY_JOBS_POLL_INTERVAL_S": "0.05",
    "MEGACITY_JOBS_BACKOFF_S": "0.1",
    "MEGACITY_QUEUE_TIMEOUT_S": "5",
}


def image_node(name: str, url: str, model: Path | None = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "name": name,
        "engine": "image",
        "url": url,
        "models": ["tiny-sd"],
        "region": "seoul",
        "max_concurrency": 1,
        **extra,
    }
    if url == "local":
        node["options"] = {"model": str(model), "default_steps": 2}
    return node


def tts_node(name: str, url: str, model: Path | str | None = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "name": name,
        "engine": "tts",
        "url": url,
        "models": ["tiny-tts"],
        "region": "seoul",
        "max_concurrency": 2,
        **extra,
    }
    if url == "local":
        node["options"] = {"model": str(model), "voice": "ko"}
    return node


def generation_topology(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """An image and a TTS model on `nodes`; zone `ktube` uses both, `plain` neither."""
    return {
        "regions": [{"name": "seoul"}],
        "default_zone": "ktube",
        "nodes": [
            *nodes,
            {
                "name": "llm",
                "engine": "llm",
                "url": "http://127.0.0.1:9",
                "models": ["chat-7b"],
                "region": "seoul",
            },
        ],
        "models": [
            {"name": "tiny-sd", "engine": "image", "aliases": ["dall-e-2", "thumbnail"]},
            {"name": "tiny-tts", "engine": "tts", "aliases": ["tts-1"]},
            {"name": "chat-7b", "tier": "7b"},
        ],
        "zones": {
            "ktube": {"engines": {"image": "tiny-sd", "tts": "tiny-tts", "llm": "chat-7b"}},
            "plain": {"engines": {"llm": "chat-7b"}, "allowed_models": ["chat-7b"]},
        },
    }


def start_router(
    tmp: Path, nodes: list[dict[str, Any]], env: dict[str, str] | None = None
) -> RouterProcess:
    config = tmp / "topology.yaml"
    config.write_text(yaml.safe_dump(generation_topology(nodes)), encoding="utf-8")
    router = RouterProcess(
        str(config),
        env={**GENERATION_ENV, "MEGACITY_DATA_DIR": str(tmp / "data"), **(env or {})},
    )
    router.start(timeout_s=60)
    return router


def wait_job(
    client: httpx.Client, status_url: str, user: str, timeout_s: float = 60
) -> dict[str, Any]:
    """Poll a job's status URL until it has finished; its view."""
    deadline = time.monotonic() + timeout_s
    while True:
        view: dict[str, Any] = client.get(status_url, headers={"X-User-Id": user}).json()
        if view["status"] in ("succeeded", "failed", "cancelled"):
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"job not finished within {timeout_s} s: {view}")
        time.sleep(0.05)

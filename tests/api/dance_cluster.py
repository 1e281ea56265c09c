"""Dance Lab set-ups for end-to-end tests: a router with the in-process pose engine or remote nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from megacity.testing import RouterProcess
from tests.api.cluster import ROUTER_ENV
from tests.video import POSE_MODEL

DANCE_ENV = {
    **ROUTER_ENV,
    "MEGACITY_POSE_TIMEOUT_S": "60",
    "MEGACITY_DANCE_MAX_VIDEO_S": "10",
    "MEGACITY_DANCE_MAX_UPLOAD_BYTES": str(4 * 1024 * 1024),
}


def pose_node(name: str, url: str, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "name": name,
        "engine": "pose",
        "url": url,
        "models": ["pose-full"],
        "region": "seoul",
        "max_concurrency": 4,
        **extra,
    }
    if url == "local":
        node["options"] = {"model": POSE_MODEL, "fps": 15, "workers": 2}
    return node


def dance_topology(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """One pose model on `nodes`; zone `ktube` uses it, `plain` has none."""
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
            {"name": "pose-full", "engine": "pose", "aliases": ["blazepose"]},
            {"name": "chat-7b", "tier": "7b"},
        ],
        "zones": {
            "ktube": {"engines": {"pose": "pose-full", "llm": "chat-7b"}},
            "plain": {"engines": {"llm": "chat-7b"}, "allowed_models": ["chat-7b"]},
        },
    }


def start_router(
    tmp: Path, nodes: list[dict[str, Any]], env: dict[str, str] | None = None
) -> RouterProcess:
    config = tmp / "topology.yaml"
    config.write_text(yaml.safe_dump(dance_topology(nodes)), encoding="utf-8")
    data = tmp / "data"
    router = RouterProcess(
        str(config), env={**DANCE_ENV, "MEGACITY_DATA_DIR": str(data), **(env or {})}
    )
    router.start()
    return router


def add_reference(
    client: httpx.Client, video: bytes, title: str = "Next Level chorus", **fields: str
) -> httpx.Response:
    return client.post(
        "/api/v1/kzone/dance/references",
        files={"file": ("reference.mp4", video, "video/mp4")},
        data={"title": title, **fields},
    )


def analyze(client: httpx.Client, video: bytes, reference_id: str, **fields: str) -> httpx.Response:
    return client.post(
        "/api/v1/kzone/dance/analyze",
        files={"file": ("attempt.mp4", video, "video/mp4")},
        data={"reference_id": reference_id, **fields},
    )

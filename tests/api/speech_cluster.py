"""Speech set-ups for end-to-end tests: a router with the in-process engine, or remote nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from openai import OpenAI

from megacity.testing import RouterProcess
from tests.api.cluster import ROUTER_ENV
from tests.audio import FAST_DECODING, WHISPER_MODEL

SPEECH_ENV = {**ROUTER_ENV, "MEGACITY_SPEECH_TIMEOUT_S": "20", "MEGACITY_MAX_BODY_BYTES": "65536"}


def speech_node(name: str, url: str, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "name": name,
        "engine": "speech",
        "url": url,
        "models": ["whisper-small"],
        "region": "seoul",
        "max_concurrency": 8,
        **extra,
    }
    if url == "local":
        node["options"] = {"model": WHISPER_MODEL, **FAST_DECODING, **extra.pop("options", {})}
    return node


def speech_topology(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """One speech model (alias whisper-1) on `nodes`; zone `kzone` uses it, `plain` has none."""
    return {
        "regions": [{"name": "seoul"}],
        "default_zone": "kzone",
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
            {"name": "whisper-small", "engine": "speech", "aliases": ["whisper-1"]},
            {"name": "chat-7b", "tier": "7b"},
        ],
        "zones": {
            "kzone": {
                "engines": {"speech": "whisper-small", "llm": "chat-7b"},
                "default_locale": "ko",
            },
            "plain": {"engines": {"llm": "chat-7b"}, "allowed_models": ["chat-7b"]},
        },
    }


def start_router(
    tmp: Path, nodes: list[dict[str, Any]], env: dict[str, str] | None = None
) -> RouterProcess:
    config = tmp / "topology.yaml"
    config.write_text(yaml.safe_dump(speech_topology(nodes), allow_unicode=True), encoding="utf-8")
    router = RouterProcess(str(config), env={**SPEECH_ENV, **(env or {})})
    router.start()
    return router


def client(url: str, **headers: str) -> OpenAI:
    return OpenAI(
        base_url=f"{url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=30,
        default_headers=headers or None,
    )

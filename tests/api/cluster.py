"""Real LLM clusters for end-to-end tests: stand-in vLLM processes behind a router process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from openai import OpenAI

from megacity.testing import RouterProcess, StandinProcess

ADMIN_TOKEN = "test-admin-token"
ALL_MODELS = ["kr-14b", "en-14b", "small-7b", "big-34b", "huge-70b"]

# Router tuned for tests: fast probes, short timeouts, so failures show within a second.
# These clusters test routing and engines: auth and rate limits are off here and have
# their own end-to-end tests (tests/api/test_auth.py, test_limits.py) with them on.
ROUTER_ENV = {
    "MEGACITY_AUTH_ENABLED": "false",
    "MEGACITY_LIMITS": '{"enabled": false}',
    "MEGACITY_ADMIN_TOKEN": ADMIN_TOKEN,
    "MEGACITY_HEALTH_INTERVAL_S": "0.2",
    "MEGACITY_HEALTH_TIMEOUT_S": "0.5",
    "MEGACITY_CONNECT_TIMEOUT_S": "0.5",
    "MEGACITY_FIRST_BYTE_TIMEOUT_S": "1.0",
    "MEGACITY_READ_TIMEOUT_S": "1.0",
    "MEGACITY_QUEUE_TIMEOUT_S": "0.3",
    "MEGACITY_BREAKER_FAILURES": "3",
    "MEGACITY_BREAKER_RESET_S": "1.0",
    "MEGACITY_MAX_BODY_BYTES": "65536",
    "MEGACITY_LOG_LEVEL": "INFO",
}


def topology(urls: dict[str, str], max_concurrency: int = 64) -> dict[str, Any]:
    """Two Seoul nodes with the same models, one in Tokyo, one cloud fallback."""

    def node(name: str, region: str, models: list[str], kind: str = "local") -> dict[str, Any]:
        return {
            "name": name,
            "engine": "llm",
            "url": urls[name],
            "models": models,
            "region": region,
            "kind": kind,
            "max_concurrency": max_concurrency,
        }

    return {
        "regions": [{"name": "seoul"}, {"name": "tokyo"}, {"name": "us"}],
        "default_zone": "edu",
        "nodes": [
            node("seoul-a", "seoul", ALL_MODELS),
            node("seoul-b", "seoul", ALL_MODELS),
            node("tokyo", "tokyo", ["small-7b", "en-14b"]),
            node("cloud", "us", ALL_MODELS, kind="cloud"),
        ],
        "models": [
            {"name": "small-7b", "tier": "7b", "aliases": ["tiny"]},
            {
                "name": "kr-14b",
                "tier": "14b",
                "aliases": ["kr-tutor"],
                "locales": {"en": "en-14b"},
                "versions": [
                    {"version": "v1", "served_as": "kr-14b-v1", "active": True},
                    {"version": "v2", "served_as": "kr-14b-v2"},
                ],
            },
            {"name": "en-14b", "tier": "14b"},
            {"name": "big-34b", "tier": "34b"},
            {"name": "huge-70b", "tier": "70b"},
        ],
        "zones": {
            "edu": {
                "engines": {"llm": "kr-14b"},
                "default_locale": "ko",
                "default_strategy": "essay_feedback",
                "tiers": {
                    "models": {
                        "7b": "small-7b",
                        "14b": "kr-14b",
                        "34b": "big-34b",
                        "70b": "huge-70b",
                    }
                },
            },
            "lite": {
                "engines": {"llm": "small-7b"},
                "default_locale": "en",
                "allowed_models": ["small-7b", "en-14b"],
                "tiers": {"models": {"7b": "small-7b", "14b": "en-14b"}, "max": "14b"},
            },
        },
    }


@dataclass
class Cluster:
    router: RouterProcess
    nodes: dict[str, StandinProcess]
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.router.url

    def client(self, **headers: str) -> OpenAI:
        return OpenAI(
            base_url=f"{self.router.url}/v1",
            api_key="unused",
            max_retries=0,
            timeout=15,
            default_headers=headers or None,
        )

    def stop(self) -> None:
        self.router.stop()
        for node in self.nodes.values():
            node.stop()


def start_cluster(
    tmp: Path,
    names: tuple[str, ...] = ("seoul-a", "seoul-b", "tokyo", "cloud"),
    env: dict[str, str] | None = None,
    max_concurrency: int = 64,
    standin_args: tuple[str, ...] = (),
) -> Cluster:
    nodes = {name: StandinProcess(name, None, *standin_args) for name in names}
    started: list[StandinProcess] = []
    try:
        for node in nodes.values():
            started.append(node)
            node.start()
        config = tmp / "topology.yaml"
        urls = {name: node.url for name, node in nodes.items()}
        config.write_text(yaml.safe_dump(topology(urls, max_concurrency)), encoding="utf-8")
        router = RouterProcess(str(config), env={**ROUTER_ENV, **(env or {})})
        router.start()
    except BaseException:
        for node in started:
            node.stop()
        raise
    return Cluster(router, nodes)

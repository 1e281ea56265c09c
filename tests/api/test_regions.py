"""Region preference and region-level failover, for every engine, through one real router.

Three regions in order — seoul (the router's), tokyo, then the cloud nodes (region us).
Every engine has two models: `<engine>-near`, whose Seoul node is down and whose Tokyo
node serves; and `<engine>-far`, whose Seoul and Tokyo nodes are both down, so only the
cloud node is left. Down means a loopback port nobody listens on. The LLM's nodes are
stand-in vLLM processes; the other engines run in the router (`url: local`) with the
tiny real models of ../shared and tests/*_models.py. Every answer names the region that
served it (X-MegaCity-Region, the access log), and /metrics counts each fallback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from megacity.testing import RouterProcess, StandinProcess, free_port
from tests.api.cluster import ROUTER_ENV
from tests.api.generation_cluster import GENERATION_ENV
from tests.audio import FAST_DECODING, WHISPER_MODEL, require_espeak, speak
from tests.video import POSE_MODEL, moving_person

ENGINES = ("llm", "speech", "pose", "image", "tts")


def _local_options(engine: str, models: dict[str, Path]) -> dict[str, Any]:
    return {
        "speech": {"model": WHISPER_MODEL, **FAST_DECODING},
        "pose": {"model": POSE_MODEL, "fps": 15, "workers": 1},
        "image": {"model": str(models["image"]), "default_steps": 2},
        "tts": {"model": "espeak-ng", "voice": "ko"},
    }[engine]


def _node(engine: str, suffix: str, region: str, served: list[str], **where: Any) -> dict[str, Any]:
    return {
        "name": f"{engine}-{suffix}",
        "engine": engine,
        "region": region,
        "models": served,
        **where,
    }


def _topology(llm: dict[str, str], models: dict[str, Path]) -> dict[str, Any]:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    nodes: list[dict[str, Any]] = []
    catalogue: list[dict[str, Any]] = []
    for engine in ENGINES:
        near, far = f"{engine}-near", f"{engine}-far"
        catalogue += [{"name": m, "engine": engine} for m in (near, far)]
        if engine == "llm":
            tokyo: dict[str, Any] = {"url": llm["tokyo"]}
            cloud: dict[str, Any] = {"url": llm["cloud"]}
        else:
            tokyo = cloud = {"url": "local", "options": _local_options(engine, models)}

        nodes += [
            _node(engine, "seoul", "seoul", [near, far], url=dead),
            _node(engine, "tokyo", "tokyo", [near], **tokyo),
            _node(engine, "tokyo-down", "tokyo", [far], url=dead),
            _node(engine, "cloud", "us", [near, far], kind="cloud", **cloud),
        ]
    for model in catalogue:
        if model["engine"] == "llm":
            model["tier"] = "7b"
    zones = {
        side: {"engines": {e: f"{e}-{side}" for e in ENGINES}, "default_locale": "ko"}
        for side in ("near", "far")
    }
    return {
        "regions": [{"name": "seoul"}, {"name": "tokyo"}, {"name": "us"}],
        "default_zone": "near",
        "nodes": nodes,
        "models": catalogue,
        "zones": zones,
    }


@dataclass
class Regions:
    router: RouterProcess
    llm: dict[str, StandinProcess]

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.router.url, timeout=120)


@pytest.fixture(scope="module")
def regions(
    tmp_path_factory: pytest.TempPathFactory, generation_models: dict[str, Path]
) -> Iterator[Regions]:
    require_espeak()
    tmp = tmp_path_factory.mktemp("regions")
    llm = {name: StandinProcess(f"llm-{name}") for name in ("tokyo", "cloud")}
    router = None
    try:
        for node in llm.values():
            node.start()
        config = tmp / "topology.yaml"
        urls = {name: node.url for name, node in llm.items()}
        config.write_text(yaml.safe_dump(_topology(urls, generation_models)), encoding="utf-8")
        env = {
            **ROUTER_ENV,
            **GENERATION_ENV,
            "MEGACITY_REGION": "seoul",
            "MEGACITY_DATA_DIR": str(tmp / "data"),
            "MEGACITY_POSE_TIMEOUT_S": "120",
            "MEGACITY_SPEECH_TIMEOUT_S": "60",
            "MEGACITY_MAX_BODY_BYTES": str(4 * 1024 * 1024),
        }
        router = RouterProcess(str(config), env=env)
        router.start(timeout_s=60)
        yield Regions(router, llm)
    finally:
        if router is not None:
            router.stop()
        for node in llm.values():
            node.stop()


def _call(http: httpx.Client, engine: str, side: str, region: str | None) -> httpx.Response:
    """One request of `engine` for the `side` zone's model, from `region` (None: the router's)."""
    headers = {"X-Zone": side, "X-User-Id": "learner-7"}
    if region is not None:
        headers["X-Region"] = region
    model = f"{engine}-{side}"
    if engine == "llm":
        body = {"model": model, "messages": [{"role": "user", "content": f"hello {side}"}]}
        return http.post("/v1/chat/completions", json=body, headers=headers)
    if engine == "speech":
        files = {"file": ("a.wav", speak("hello there"), "audio/wav")}
        return http.post(
            "/v1/audio/transcriptions", files=files, data={"model": model}, headers=headers
        )
    if engine == "pose":
        files = {"file": ("ref.mp4", moving_person(1.5), "video/mp4")}
        data = {"title": f"region {side}"}
        return http.post("/api/v1/kzone/dance/references", files=files, data=data, headers=headers)
    if engine == "image":
        body = {"model": model, "prompt": "a hanok village", "size": "256x256", "steps": 2}
        return http.post("/v1/images/generations", json=body, headers=headers)
    body = {"model": model, "input": "안녕하세요", "voice": "ko", "response_format": "wav"}
    return http.post("/v1/audio/speech", json=body, headers=headers)


def _fallbacks(http: httpx.Client) -> dict[tuple[str, str, str], float]:
    text = http.get("/metrics").text
    pattern = re.compile(
        r'^megacity_region_fallbacks_total\{engine="([^"]+)",from_region="([^"]+)",'
        r'to_region="([^"]+)"\} ([0-9.e+]+)$',
        re.MULTILINE,
    )
    return {(e, f, t): float(v) for e, f, t, v in pattern.findall(text)}


def test_every_engine_goes_to_the_next_region_then_to_cloud(regions: Regions) -> None:
    with regions.http() as http:
        for engine in ENGINES:
            near = _call(http, engine, "near", "seoul")
            assert near.status_code in (200, 201), (engine, near.text)
            assert near.headers["x-megacity-node"] == f"{engine}-tokyo", engine
            assert near.headers["x-megacity-region"] == "tokyo", engine
            far = _call(http, engine, "far", None)  # the router's own region: seoul
            assert far.status_code in (200, 201), (engine, far.text)
            assert far.headers["x-megacity-node"] == f"{engine}-cloud", engine
            assert far.headers["x-megacity-region"] == "us", engine
        # Asked from Tokyo, the Tokyo node is home: no fallback is counted for it.
        home = _call(http, "llm", "near", "tokyo")
        assert home.headers["x-megacity-node"] == "llm-tokyo"
        counted = _fallbacks(http)
    for engine in ENGINES:
        assert counted[(engine, "seoul", "tokyo")] == 1, (engine, counted)
        assert counted[(engine, "seoul", "cloud")] == 1, (engine, counted)
    assert not [k for k in counted if k[1] == "tokyo"], counted
    log = regions.router.output()
    assert '"served_from":"tokyo"' in log and '"served_from":"cloud"' in log
    assert '"region":"tokyo"' in log  # the access log names the serving node's region


def test_a_region_dying_under_traffic_is_not_noticed(regions: Regions) -> None:
    """The Tokyo LLM node is killed between two requests: the next goes to cloud, no error."""
    with regions.http() as http:
        before = _call(http, "llm", "near", "tokyo")
        assert before.headers["x-megacity-node"] == "llm-tokyo"
        regions.llm["tokyo"].kill()
        for i in range(5):  # before and after the health probes notice
            after = _call(http, "llm", "near", "tokyo")
            assert after.status_code == 200, (i, after.text)
            assert after.headers["x-megacity-node"] == "llm-cloud"
            assert after.headers["x-megacity-region"] == "us"
        assert _fallbacks(http)[("llm", "tokyo", "cloud")] == 5

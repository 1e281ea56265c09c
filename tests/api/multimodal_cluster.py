"""The multimodal tutor end to end: a router with the real pose, face and speech engines
in-process, stand-in LLM and VLM nodes for fault injection, and zones to route between."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from megacity.testing import RouterProcess, StandinProcess
from tests.api.cluster import ROUTER_ENV
from tests.audio import FAST_DECODING, WHISPER_MODEL
from tests.video import POSE_MODEL, SHARED

FACE_MODEL = str((SHARED / "models" / "face_landmarker.task").resolve())
PATH = "/api/v1/ai/multimodal"
# What a stand-in LLM answers when a test wants a valid answer: the tutor's Feedback JSON,
# with one fix anchored where the test media have something and one that cannot be right.
VALID_FEEDBACK = {
    "summary": "Good energy and a clear start; two moments need work.",
    "strengths": ["You kept the rhythm in the first second."],
    "fixes": [
        {"text": "Raise your left arm higher.", "time_s": 0.5, "part": "left_arm"},
        {"text": "Move your tail.", "time_s": 0.5, "part": "tail"},
        {"text": "Hold the pose longer.", "time_s": 999.0},
    ],
    "next_exercise": "Repeat the first two counts slowly, five times.",
}
MULTIMODAL_ENV = {
    **ROUTER_ENV,
    "MEGACITY_FIRST_BYTE_TIMEOUT_S": "30",
    "MEGACITY_READ_TIMEOUT_S": "30",
    "MEGACITY_QUEUE_TIMEOUT_S": "5",
    "MEGACITY_POSE_TIMEOUT_S": "120",
    "MEGACITY_SPEECH_TIMEOUT_S": "60",
    "MEGACITY_JOBS_POLL_INTERVAL_S": "0.1",
    # Generous: the suite runs on a loaded 2-core machine. The slow-VLM test sets its own.
    "MEGACITY_MULTIMODAL": orjson.dumps(
        {
            "deadlines": {"vision": 6, "pose": 120, "face": 60, "speech": 60, "overall": 240},
            "inline_max_video_s": 5,
            "max_video_s": 20,
        }
    ).decode(),
}


def _node(name: str, engine: str, url: str, models: list[str], **options: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "name": name,
        "engine": engine,
        "url": url,
        "models": models,
        "region": "seoul",
        "max_concurrency": 8,
    }
    if options:
        node["options"] = options
    return node


def multimodal_topology(llm_url: str, vlm_url: str) -> dict[str, Any]:
    """Zone `tutor` has every engine; `novision` lacks a vision model; `deadpose` has its
    pose model on a node nobody listens on."""
    engines = {
        "llm": "fast-7b",
        "speech": "whisper-small",
        "pose": "pose-full",
        "face": "face-mesh",
        "vision": "vl-7b",
        "tts": "speak",
    }
    tiers = {"models": {"7b": "fast-7b", "34b": "core-34b"}}
    return {
        "regions": [{"name": "seoul"}],
        "default_zone": "tutor",
        "nodes": [
            _node("llm", "llm", llm_url, ["fast-7b", "core-34b"]),
            _node("vlm", "vision", vlm_url, ["vl-7b"]),
            _node("pose-local", "pose", "local", ["pose-full"], model=POSE_MODEL, workers=1),
            _node("pose-dead", "pose", "http://127.0.0.1:9", ["pose-gone"]),
            _node("face-local", "face", "local", ["face-mesh"], model=FACE_MODEL, fps=5),
            _node(
                "speech-local",
                "speech",
                "local",
                ["whisper-small"],
                model=WHISPER_MODEL,
                **FAST_DECODING,
            ),
            _node("tts-local", "tts", "local", ["speak"], model="espeak-ng"),
        ],
        "models": [
            {"name": "fast-7b", "tier": "7b"},
            {"name": "core-34b", "tier": "34b"},
            {"name": "vl-7b", "engine": "vision", "tier": "7b", "modalities": ["text", "image"]},
            {"name": "pose-full", "engine": "pose"},
            {"name": "pose-gone", "engine": "pose"},
            {"name": "face-mesh", "engine": "face"},
            {"name": "whisper-small", "engine": "speech"},
            {"name": "speak", "engine": "tts"},
        ],
        "zones": {
            "tutor": {"engines": engines, "default_locale": "en", "tiers": tiers},
            "tutor-ko": {"engines": engines, "default_locale": "ko", "tiers": tiers},
            "novision": {
                "engines": {k: v for k, v in engines.items() if k != "vision"},
                "tiers": tiers,
            },
            "deadpose": {"engines": {**engines, "pose": "pose-gone"}, "tiers": tiers},
        },
    }


@dataclass
class MultimodalCluster:
    router: RouterProcess
    llm: StandinProcess
    vlm: StandinProcess
    data_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, zone: str = "tutor", timeout: float = 240) -> httpx.Client:
        return httpx.Client(
            base_url=self.router.url,
            headers={"X-Zone": zone, "X-User-Id": "learner-7"},
            timeout=timeout,
        )

    def reset(self) -> None:
        """Stand-ins back to healthy, fast, answering valid feedback JSON."""
        feedback = orjson.dumps(VALID_FEEDBACK).decode()
        self.llm.configure(fail="none", latency_ms=0, reply=feedback, reset_stats=True)
        self.vlm.configure(
            fail="none",
            latency_ms=0,
            reply='{"description": "a person standing", "objects": ["person"]}',
            reset_stats=True,
        )

    def stop(self) -> None:
        self.router.stop()
        self.llm.stop()
        self.vlm.stop()


def start_multimodal(tmp: Path, env: dict[str, str] | None = None) -> MultimodalCluster:
    llm, vlm = StandinProcess("llm"), StandinProcess("vlm")
    started: list[StandinProcess] = []
    try:
        for node in (llm, vlm):
            started.append(node)
            node.start()
        config = tmp / "topology.yaml"
        config.write_text(yaml.safe_dump(multimodal_topology(llm.url, vlm.url)), encoding="utf-8")
        data = tmp / "data"
        router = RouterProcess(
            str(config), env={**MULTIMODAL_ENV, "MEGACITY_DATA_DIR": str(data), **(env or {})}
        )
        router.start(timeout_s=60)
    except BaseException:
        for node in started:
            node.stop()
        raise
    cluster = MultimodalCluster(router, llm, vlm, data)
    cluster.reset()
    return cluster


def post(
    client: httpx.Client, files: dict[str, Any] | list[tuple[str, Any]], **fields: str
) -> httpx.Response:
    return client.post(PATH, files=files, data=fields)


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in body.split("\n\n"):
        kind, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])
        if kind is not None and data is not None:
            events.append((kind, data))
    return events

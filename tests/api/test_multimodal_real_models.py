"""The tutor with real models on its LLM steps: the tiny LLaVA sees the photo and
SmolLM2-135M-Instruct — a trained instruct model — writes the learner's answer, both behind
`transformers serve`. (The `general` scenario: the accelerator answers alone; the bench runs
`homework`, core and accelerator both, a few times.)

`transformers serve` has no guided decoding (it ignores `response_format`), so the 135M model
writes valid JSON only sometimes: the answer must be valid either way — the model's feedback
when its JSON passes the checks, the deterministic composer's when it does not. What the model
says is never asserted; `make bench` (bench/multimodal.py) counts how often each happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from megacity.testing import RouterProcess
from tests import video as V
from tests.api.cluster import ROUTER_ENV
from tests.api.multimodal_cluster import FACE_MODEL
from tests.hf_server import TransformersServer, smollm2_model_id


def _topology(server: str, vl: str, smol: str) -> dict[str, Any]:
    def model(name: str, tier: str, served_as: str, **extra: Any) -> dict[str, Any]:
        version = {"version": "v1", "served_as": served_as, "active": True}
        return {"name": name, "tier": tier, "versions": [version], **extra}

    return {
        "regions": [{"name": "seoul"}],
        "default_zone": "school",
        "nodes": [
            {
                "name": "hf-llm",
                "engine": "llm",
                "url": server,
                "models": ["smol-7b", "smol-34b"],
                "region": "seoul",
            },
            {
                "name": "hf-vl",
                "engine": "vision",
                "url": server,
                "models": ["tiny-vl"],
                "region": "seoul",
            },
            {
                "name": "face-local",
                "engine": "face",
                "url": "local",
                "models": ["face-mesh"],
                "region": "seoul",
                "options": {"model": FACE_MODEL},
            },
        ],
        "models": [
            model("smol-7b", "7b", smol),
            model("smol-34b", "34b", smol),
            model("tiny-vl", "7b", vl, engine="vision", modalities=["text", "image"]),
            {"name": "face-mesh", "engine": "face"},
        ],
        "zones": {
            "school": {
                "engines": {"llm": "smol-7b", "vision": "tiny-vl", "face": "face-mesh"},
                "default_locale": "en",
                "tiers": {"models": {"7b": "smol-7b", "34b": "smol-34b"}},
            }
        },
    }


@pytest.fixture(scope="module")
def router(
    tmp_path_factory: pytest.TempPathFactory, hf_server: TransformersServer, tiny_vlm: str
) -> Iterator[RouterProcess]:
    smol = smollm2_model_id()
    hf_server.chat(smol, "Say hello.", max_tokens=2)  # loads it (a minute or two on a busy CPU)
    tmp: Path = tmp_path_factory.mktemp("real-models")
    config = tmp / "topology.yaml"
    config.write_text(yaml.safe_dump(_topology(hf_server.url, tiny_vlm, smol)))
    policy = {
        "max_tokens": 96,
        "deadlines": {"vision": 120, "core": 240, "accelerator": 240, "overall": 600},
    }
    env = {
        **ROUTER_ENV,
        "MEGACITY_FIRST_BYTE_TIMEOUT_S": "300",
        "MEGACITY_READ_TIMEOUT_S": "300",
        "MEGACITY_MULTIMODAL": orjson.dumps(policy).decode(),
        "MEGACITY_DATA_DIR": str(tmp / "data"),
    }
    r = RouterProcess(str(config), env=env)
    r.start(timeout_s=60)
    yield r
    r.stop()


def test_real_models_meet_the_json_path_and_the_answer_is_valid_either_way(
    router: RouterProcess,
) -> None:
    with httpx.Client(base_url=router.url, timeout=700) as http:
        r = http.post(
            "/api/v1/ai/multimodal",
            files=[("image", ("homework.jpg", V.jpeg_with_gps(), "image/jpeg"))],
            data={"scenario": "general", "text": "What is in my homework photo?"},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scenario"] == "general" and body["models"] == {"accelerator": "smol-7b"}
    assert body["sources"]["accelerator"] in ("llm", "deterministic")
    assert "core" not in body["sources"]  # general: no reasoning core
    assert body["summary"].strip() and isinstance(body["strengths"], list)
    for fix in body["fixes"]:  # whoever wrote them, every anchor passed the checks
        assert fix["text"] and fix.get("part") in (
            None,
            "head",
            "torso",
            "left_arm",
            "right_arm",
            "left_leg",
            "right_leg",
        )
    vision = body["features"]["signals"]["vision"]
    assert vision["model"] == "tiny-vl" and vision["images"] == 1
    face = body["features"]["signals"]["face"]  # the homework photo is the astronaut
    assert body["scores"]["smile_share"] == face["expressions"]["smile"]["share"]

"""Multimodal tutor benchmark: per scenario, the router with the real engines on CPU.

A router process runs the real pose (MediaPipe, 1 worker process), face (MediaPipe Face
Landmarker) and speech (faster-whisper, the random-weight tiny model: decoding capped at 16
tokens, so it measures the pipeline, not a real model's decoding) engines in-process, with
stand-in LLM and VLM servers that answer at once (valid feedback JSON). Per scenario:

* extraction wall time against the sum of its parts and against the slowest extractor
  (parallel extraction must take ≤ 1.2 × the slowest, not the sum);
* end-to-end p50 / p95 as a client sees it;
* the router's own overhead outside the engines (target < 5 ms), in two parts: `receive`,
  from the request's arrival to the tutor (reading the upload, parsing the form, checking
  the media), and `router steps`, the request's time minus that, the extraction and the two
  LLM calls (the guard, the plan, fusion, findings, prompts, the composer, and the event
  loop's own waits while in-process engines share its two cores);
* face extraction frames per second, in this process;
* with real models (skip with --no-real-llm): SmolLM2-135M-Instruct behind `transformers
  serve` as core and accelerator and the tiny LLaVA as the VLM — how often the model's JSON
  was valid and used, and how often the deterministic composer answered instead.

Usage: python bench/multimodal.py [--runs N] [--real-llm-runs N] [--no-real-llm]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import pct, table  # noqa: E402

from megacity.engines.face import FaceEngine, FaceEngineConfig  # noqa: E402
from tests import video as V  # noqa: E402
from tests.api.multimodal_cluster import FACE_MODEL, PATH, start_multimodal  # noqa: E402

SCRIPT = "저는 매일 아침 커피를 마십니다."
GPU_NOTES = """\
Expected on a GPU node (not measured here): Whisper large-v3 fp16 ~0.5-0.9 s for a 5 s
line; pose and face at 15 fps ~2-4 ms a frame (extraction stays bound by the slowest
engine, now speech or the VLM); Qwen2-VL-7B on vLLM ~0.3-1 s per image prompt; the 34b core
~2-4 s and the 7b accelerator ~0.5-1 s for 300 tokens of guided JSON. The router's own
overhead does not change with the hardware."""


def _scenarios(reference_id: str) -> dict[str, tuple[Any, dict[str, str]]]:
    audio = (V.SHARED / "audio" / "en1.wav").read_bytes()
    return {
        "drama_coach (3 s video: speech, face, pose)": (
            {"video": ("line.mp4", V.talking_face(), "video/mp4")},
            {"script": SCRIPT, "language": "ko"},
        ),
        "dance_coach (4 s video + reference: pose, dance, face, vision)": (
            {"video": ("dance.mp4", V.moving_person(offset_s=0.3), "video/mp4")},
            {"reference_id": reference_id},
        ),
        "homework (photo: vision)": (
            [("image", ("hw.jpg", V.jpeg_with_gps(), "image/jpeg"))],
            {"scenario": "homework"},
        ),
        "general (3 s audio: speech)": ({"audio": ("q.wav", audio, "audio/wav")}, {}),
    }


def _one(
    http: httpx.Client, files: Any, fields: dict[str, str], tag: str
) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    r = http.post(PATH, files=files, data={**fields, "text": tag})
    elapsed = time.perf_counter() - began
    r.raise_for_status()
    return elapsed, r.json()


def scenarios(runs: int) -> list[list[str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_multimodal(Path(tmp), {"MEGACITY_REQUEST_LOG": "false"})
        try:
            with cluster.client() as http:
                ref = http.post(
                    "/api/v1/kzone/dance/references",
                    files={"file": ("ref.mp4", V.moving_person(), "video/mp4")},
                    data={"title": "bench"},
                )
                ref.raise_for_status()
                for name, (files, fields) in _scenarios(ref.json()["id"]).items():
                    _one(http, files, fields, "warm-up")  # loads every model once
                    results = [_one(http, files, fields, f"run {i}") for i in range(runs)]
                    cached, _ = _one(http, files, fields, f"run {runs - 1}")  # features cached
                    rows.append(_row(name, results, cached))
        finally:
            cluster.stop()
    return rows


def _row(name: str, results: list[tuple[float, dict[str, Any]]], cached: float) -> list[str]:
    latency = [t * 1000 for t, _ in results]
    walls, sums, slowest, receive, steps = [], [], [], [], []
    for _, body in results:
        t = body["timings_ms"]
        parts = [v for k, v in t.items() if k.startswith("extract.")]
        walls.append(t["extract"])
        sums.append(sum(parts))
        slowest.append(max(parts))
        receive.append(t["receive"])
        llm = t.get("core", 0.0) + t.get("accelerator", 0.0)
        steps.append(t["total"] - t["receive"] - t["extract"] - llm)
    ratio = [w / s for w, s in zip(walls, slowest, strict=True)]
    return [
        name,
        f"{pct(walls, 0.5):,.0f}",
        f"{pct(sums, 0.5):,.0f}",
        f"{pct(slowest, 0.5):,.0f}",
        f"{pct(ratio, 0.5):.2f}×",
        f"{pct(latency, 0.5):,.0f} / {pct(latency, 0.95):,.0f}",
        f"{pct(receive, 0.5):.1f}",
        f"{pct(steps, 0.5):.1f}",
        f"{cached * 1000:,.0f}",
    ]


def face_fps() -> list[list[str]]:
    engine = FaceEngine(FaceEngineConfig.from_options({"model": FACE_MODEL}))
    clip = V.moving_person(seconds=10.0, fps=30)
    rows = []
    try:
        asyncio.run(engine.images([V.astronaut()]))  # loads the model
        for fps in (5.0, 15.0):
            began = time.perf_counter()
            track = asyncio.run(engine.video(clip, max_seconds=60, fps=fps))
            seconds = time.perf_counter() - began
            rows.append(
                [
                    f"10 s 640×480 clip sampled at {fps:g} fps ({track.frames} frames, {track.faces} faces)",
                    f"{track.frames / seconds:,.1f}",
                    f"{seconds * 1000 / track.frames:.1f}",
                ]
            )
    finally:
        engine.close()
    return rows


def real_models(runs: int) -> list[list[str]]:
    import yaml

    from megacity.testing import RouterProcess
    from tests.api.cluster import ROUTER_ENV
    from tests.api.test_multimodal_real_models import _topology
    from tests.hf_server import TransformersServer, smollm2_model_id
    from tests.vlm_models import build_tiny_llava

    sources: Counter[str] = Counter()
    latency = []
    with tempfile.TemporaryDirectory() as tmp:
        server = TransformersServer().start()
        router = None
        try:
            vl, smol = str(build_tiny_llava(Path(tmp) / "tiny-llava")), smollm2_model_id()
            server.chat(vl, "warm up")
            server.chat(smol, "Say hello.", max_tokens=2)
            config = Path(tmp) / "topology.yaml"
            config.write_text(yaml.safe_dump(_topology(server.url, vl, smol)))
            policy = {
                "max_tokens": 200,
                "deadlines": {"core": 300, "accelerator": 300, "overall": 900},
            }
            env = {
                **ROUTER_ENV,
                "MEGACITY_FIRST_BYTE_TIMEOUT_S": "600",
                "MEGACITY_READ_TIMEOUT_S": "600",
                "MEGACITY_MULTIMODAL": orjson.dumps(policy).decode(),
                "MEGACITY_DATA_DIR": str(Path(tmp) / "data"),
            }
            router = RouterProcess(str(config), env=env)
            router.start(timeout_s=60)
            questions = [
                "What is wrong with my answer?",
                "Explain the first step.",
                "Is this right?",
            ]
            with httpx.Client(base_url=router.url, timeout=900) as http:
                for i in range(runs):
                    began = time.perf_counter()
                    r = http.post(
                        PATH,
                        files=[("image", ("hw.jpg", V.jpeg_with_gps(), "image/jpeg"))],
                        data={
                            "scenario": "homework",
                            "text": questions[i % len(questions)] + f" ({i})",
                        },
                    )
                    latency.append(time.perf_counter() - began)
                    r.raise_for_status()
                    body = r.json()
                    for step, source in body["sources"].items():
                        sources[f"{step}:{source}"] += 1
                    for step, why in body["fallbacks"].items():
                        sources[f"{step}:{why}"] += 1
        finally:
            if router is not None:
                router.stop()
            server.stop()
    return [
        [
            step,
            f"{sources[f'{step}:llm']} / {runs}",
            f"{sources[f'{step}:deterministic']} / {runs}",
            ", ".join(
                f"{why} {sources[f'{step}:{why}']}"
                for why in ("invalid_json", "rejected", "timeout", "failed")
                if sources[f"{step}:{why}"]
            ),
        ]
        for step in ("core", "accelerator")
    ] + [["end to end (median)", f"{pct(latency, 0.5):,.1f} s", "", ""]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--real-llm-runs", type=int, default=3)
    parser.add_argument("--no-real-llm", action="store_true")
    args = parser.parse_args()
    table(
        f"Multimodal tutor, per scenario (ms; median of {args.runs}; stand-in LLM/VLM, real pose/face/speech on CPU)",
        [
            "scenario",
            "extract wall",
            "sum of parts",
            "slowest",
            "wall/slowest (≤1.2)",
            "e2e p50 / p95",
            "receive",
            "router steps (<5)",
            "cached repeat",
        ],
        scenarios(args.runs),
    )
    table(
        "Face extraction (MediaPipe Face Landmarker, one thread)",
        ["clip", "frames/s", "ms/frame"],
        face_fps(),
    )
    if not args.no_real_llm:
        table(
            f"Real models on the JSON path: SmolLM2-135M (core + accelerator, no guided decoding) + tiny LLaVA, {args.real_llm_runs} homework requests",
            ["step", "model's JSON used", "deterministic composer", "why"],
            real_models(args.real_llm_runs),
        )
    print("\n" + GPU_NOTES)


if __name__ == "__main__":
    main()

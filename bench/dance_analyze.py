"""Dance Lab benchmark: end-to-end analysis of a 10 s, 30 fps learner clip.

A router process with the in-process pose engine (MediaPipe Pose Landmarker "full",
../shared/models, CPU, 15 fps sampling, 2 worker processes) stores a 10 s reference, then
`POST /api/v1/kzone/dance/analyze` is timed with a 10 s 30 fps clip of the same moves
(the tests' astronaut video, 640×480 H.264). Then the stages in this process: the video
extraction, the score (normalise + exact DTW + explanation) and the two pictures, so the
total can be read as a sum. Target on this 2-core CPU: under 3 s end to end.

Usage: python bench/dance_analyze.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import table  # noqa: E402

from megacity.engines.pose import PoseEngine, PoseEngineConfig  # noqa: E402
from megacity.engines.video import frame_at  # noqa: E402
from megacity.pipelines.dance_heatmap import heatmap_png  # noqa: E402
from megacity.pipelines.dance_overlay import overlay_png  # noqa: E402
from megacity.scoring.dance import score_dance  # noqa: E402
from megacity.testing import RouterProcess  # noqa: E402
from tests.api.dance_cluster import DANCE_ENV, dance_topology, pose_node  # noqa: E402
from tests.video import POSE_MODEL, moving_person  # noqa: E402

SECONDS, FPS = 10.0, 30


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:,.0f} ms"


def through_router(reference: bytes, attempt: bytes, runs: int) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "topology.yaml"
        config.write_text(yaml.safe_dump(dance_topology([pose_node("pose-local", "local")])))
        env = {
            **DANCE_ENV,
            "MEGACITY_DATA_DIR": str(Path(tmp) / "data"),
            "MEGACITY_DANCE_MAX_VIDEO_S": "60",
            "MEGACITY_DANCE_MAX_UPLOAD_BYTES": str(64 << 20),
            "MEGACITY_REQUEST_LOG": "false",
        }
        router = RouterProcess(str(config), env=env)
        router.start(timeout_s=60)
        try:
            with httpx.Client(base_url=router.url, timeout=300) as client:
                started = time.perf_counter()
                resp = client.post(
                    "/api/v1/kzone/dance/references",
                    files={"file": ("ref.mp4", reference, "video/mp4")},
                    data={"title": "bench"},
                )
                first = time.perf_counter() - started  # includes loading the model
                resp.raise_for_status()
                ref_id = resp.json()["id"]
                times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    resp = client.post(
                        "/api/v1/kzone/dance/analyze",
                        files={"file": ("attempt.mp4", attempt, "video/mp4")},
                        data={"reference_id": ref_id},
                    )
                    times.append(time.perf_counter() - started)
                    resp.raise_for_status()
        finally:
            router.stop()
    return times, first


def stages(reference: bytes, attempt: bytes, runs: int) -> list[list[str]]:
    engine = PoseEngine(PoseEngineConfig.from_options({"model": POSE_MODEL, "workers": 2}))
    try:
        ref = engine.extract_sync(reference, max_seconds=60).sequence()
        extract, score, pictures = [], [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            ext = engine.extract_sync(attempt, max_seconds=60)
            t1 = time.perf_counter()
            result = score_dance(ext.sequence(), ref)
            t2 = time.perf_counter()
            heatmap_png(result.heatmap)
            i = len(ext.timestamps) // 2
            overlay_png(
                frame_at(attempt, float(ext.timestamps[i])),
                np.array(ext.keypoints[i]),
                np.array(ref.keypoints[i]),
                aspect_ratio=ref.aspect_ratio,
            )
            t3 = time.perf_counter()
            extract.append(t1 - t0)
            score.append(t2 - t1)
            pictures.append(t3 - t2)
        frames = len(ext.timestamps)
    finally:
        engine.close()
    return [
        [f"pose extraction ({frames} frames at 15 fps, 2 processes)", _ms(extract)],
        ["score: normalise + exact DTW + explanation", _ms(score)],
        ["heatmap + overlay PNGs (incl. decoding the frame)", _ms(pictures)],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    reference = moving_person(SECONDS, FPS)
    attempt = moving_person(SECONDS, FPS, offset_s=0.4)
    router_times, first = through_router(reference, attempt, args.runs)
    rows = stages(reference, attempt, args.runs)
    rows.append(
        ["`POST /analyze` through the router, end to end (target < 3 s)", _ms(router_times)]
    )
    rows.append(["first reference upload (includes loading the model)", f"{first * 1000:,.0f} ms"])
    table(
        f"Dance Lab: a {SECONDS:g} s {FPS} fps 640×480 clip, CPU, median of {args.runs}",
        ["stage", "time"],
        rows,
    )


if __name__ == "__main__":
    main()

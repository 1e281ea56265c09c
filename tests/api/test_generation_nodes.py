"""Generation on the real services: PostgreSQL, Redis Streams, an S3 server (moto) and
remote image and TTS nodes, with the jobs run by `megacity worker` processes — one of
them SIGKILLed in the middle of the work. Every job must finish once, nothing lost."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
import pytest

from megacity.jobs.keys import Keys
from megacity.jobs.testing import WorkerProcess, redis_url_or_skip, unique_prefix, wipe
from megacity.safety.watermark import verify_image
from megacity.testing import ImageNodeProcess, TTSNodeProcess, free_port
from tests.api.generation_cluster import (
    GENERATION_ENV,
    image_node,
    start_router,
    tts_node,
    wait_job,
)
from tests.api.test_generation import wav_samples
from tests.db.conftest import pg_admin_url, pg_url  # noqa: F401  (fixtures)

ACCESS_KEY, SECRET_KEY = "testing", "testing-secret"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def services_env(pg_url: str, s3: str) -> Iterator[dict[str, str]]:  # noqa: F811
    """PostgreSQL, Redis (a prefix of its own) and a fresh bucket, as the environment."""
    redis_url = redis_url_or_skip()
    prefix = unique_prefix()
    bucket = f"gen-{secrets.token_hex(6)}"
    boto3.client(
        "s3",
        endpoint_url=s3,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    env = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "MEGACITY_JOBS_KEY_PREFIX": prefix,
        "MEGACITY_JOBS_VISIBILITY_TIMEOUT_S": "3",
        "S3_ENDPOINT_URL": s3,
        "S3_BUCKET": bucket,
        "S3_ACCESS_KEY_ID": ACCESS_KEY,
        "S3_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    try:
        yield env
    finally:
        wipe(redis_url, Keys(prefix))


def _bucket_keys(env: dict[str, str]) -> list[str]:
    client = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    listing = client.list_objects_v2(Bucket=env["S3_BUCKET"])
    return sorted(item["Key"] for item in listing.get("Contents", []))


# Generous overall deadlines: processes start and jobs run while other work shares the CPU.
STARTUP_S = 180.0
FINISH_S = 300.0


def test_jobs_survive_a_killed_worker_on_redis_postgres_s3_and_remote_nodes(
    tmp_path: Path, services_env: dict[str, str], generation_models: dict[str, Path]
) -> None:
    image = ImageNodeProcess(
        "gpu-image-a", str(generation_models["image"]), None, "--steps", "2", "--no-preload"
    )
    tts = TTSNodeProcess("gpu-tts-a", str(generation_models["tts"]), None, "--no-preload")
    started: list[Any] = []
    try:
        for node in (image, tts):
            node.start(timeout_s=STARTUP_S)
            started.append(node)
        nodes = [image_node("gpu-image-a", image.url), tts_node("gpu-tts-a", tts.url)]
        router = start_router(
            tmp_path, nodes, {**services_env, "MEGACITY_JOBS_EMBEDDED_WORKER": "false"}
        )
        started.append(router)
        env = {**GENERATION_ENV, **services_env}
        config = str(tmp_path / "topology.yaml")
        workers = [WorkerProcess(["--config", config, "--concurrency", "1"], env) for _ in range(2)]
        started.extend(workers)
        with httpx.Client(base_url=router.url, timeout=90) as http:
            ids = _submit(http, thumbnails=4, speeches=4)
            _kill_one_worker_mid_job(http, ids, workers)
            started.append(WorkerProcess(["--config", config], env))  # a replacement
            views = [wait_job(http, f"/api/v1/jobs/{job_id}", "alice", FINISH_S) for job_id in ids]
            _check_openai_speech(router.url)
        outcomes = [(v["kind"], v["status"], v["error"]) for v in views]
        assert [v["status"] for v in views] == ["succeeded"] * len(ids), outcomes
        expected = []
        for view in views:
            result = view["result"]
            files = result.get("images") or [result["audio"]]
            expected += [f["key"] for f in files]
            assert result["node"] in ("gpu-image-a", "gpu-tts-a")
            for item in result.get("images", []):
                assert verify_image(httpx.get(item["url"], timeout=10).content).present
        # Exactly the objects of the finished jobs are in the bucket: none lost, none twice.
        stored = [k for k in _bucket_keys(services_env) if k.startswith("kzone/generated/alice/")]
        assert stored == sorted(expected)
    finally:
        for process in reversed(started):
            if isinstance(process, WorkerProcess):
                process.close()
            else:
                process.stop()


def _submit(http: httpx.Client, *, thumbnails: int, speeches: int) -> list[str]:
    ids = []
    for i in range(thumbnails):
        body = {"prompt": f"thumbnail {i}", "width": 256, "height": 256, "seed": i}
        sent = http.post(
            "/api/v1/kzone/generate/thumbnail", json=body, headers={"X-User-Id": "alice"}
        )
        assert sent.status_code == 202, sent.text
        ids.append(sent.json()["id"])
    for i in range(speeches):
        body = {"text": f"문장 {i}번을 읽어 보세요.", "seed": i}
        sent = http.post("/api/v1/kzone/tts", json=body, headers={"X-User-Id": "alice"})
        assert sent.status_code == 202, sent.text
        ids.append(sent.json()["id"])
    return ids


def _kill_one_worker_mid_job(
    http: httpx.Client, ids: list[str], workers: list[WorkerProcess]
) -> None:
    """SIGKILL the first worker once any job runs (it holds one of them, or soon will)."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        views = [http.get(f"/api/v1/jobs/{i}", headers={"X-User-Id": "alice"}).json() for i in ids]
        if any(v["status"] != "queued" for v in views):
            workers[0].kill()
            return
        time.sleep(0.05)
    raise TimeoutError(f"no job started within {STARTUP_S} s: " + workers[0].output()[-2000:])


def _check_openai_speech(url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=90)
    wav = client.audio.speech.create(
        model="tts-1", voice="alloy", input="안녕", response_format="wav"
    )
    samples, rate = wav_samples(wav.content)
    assert samples.size > 0 and rate > 0

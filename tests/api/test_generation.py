"""Generation end to end on the embedded default: one router process (SQLite, local store,
in-process job worker, in-process image and TTS engines on tiny real models), driven over
HTTP on 127.0.0.1 and through the official `openai` client."""

from __future__ import annotations

import base64
import hashlib
import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from megacity.db import Database
from megacity.db.models import StoredObject
from megacity.safety.watermark import verify_audio, verify_image
from megacity.testing import RouterProcess
from tests.api.generation_cluster import image_node, start_router, tts_node, wait_job

ALICE = {"X-User-Id": "alice"}


@pytest.fixture(scope="module")
def router(
    tmp_path_factory: pytest.TempPathFactory, generation_models: dict[str, Path]
) -> Iterator[tuple[RouterProcess, Path]]:
    tmp = tmp_path_factory.mktemp("generation")
    nodes = [
        image_node("image-local", "local", generation_models["image"]),
        tts_node("tts-local", "local", generation_models["tts"]),
    ]
    router = start_router(tmp, nodes)
    yield router, tmp / "data"
    router.stop()


@pytest.fixture
def http(router: tuple[RouterProcess, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router[0].url, timeout=90) as client:
        yield client


@pytest.fixture
def client(router: tuple[RouterProcess, Path]) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=router[0].url + "/v1",
        api_key="unused",
        max_retries=0,
        timeout=90,
        default_headers=ALICE,
    )


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return pcm.astype(np.float32) / 32768.0, w.getframerate()


def test_openai_images_are_watermarked_reproducible_pngs(client: openai.OpenAI) -> None:
    made = client.images.generate(
        model="dall-e-2",
        prompt="a cat dancing K-pop on a stage",
        size="256x256",
        n=2,
        response_format="b64_json",
        extra_body={"seed": 7, "steps": 2},
    )
    pngs = [base64.b64decode(item.b64_json or "") for item in made.data]
    assert len(pngs) == 2 and pngs[0] != pngs[1]
    for png in pngs:
        image = Image.open(io.BytesIO(png))
        assert (image.format, image.size) == ("PNG", (256, 256))
        check = verify_image(png)
        assert check.present, check
        assert check.metadata.get("ai_generated") == "true"
    # The same request with the same seed makes the same picture, to the byte.
    twice = [
        client.images.generate(
            prompt="a cat dancing K-pop on a stage",
            size="256x256",
            response_format="b64_json",
            extra_body={"seed": 8, "steps": 2},
        )
        for _ in range(2)
    ]
    first, second = (base64.b64decode(made.data[0].b64_json or "") for made in twice)
    assert first == second
    # In a batch, image i has seed + i: alone with that seed it is the same picture (a
    # batch's convolutions may round a pixel level differently).
    alone = np.asarray(Image.open(io.BytesIO(second)), dtype=np.int16)
    batch = np.asarray(Image.open(io.BytesIO(pngs[1])), dtype=np.int16)
    assert np.abs(alone - batch).max() <= 3


def test_openai_image_urls_are_signed_downloads(client: openai.OpenAI, http: httpx.Client) -> None:
    made = client.images.generate(prompt="a hanok at dusk", size="256x256")
    url = made.data[0].url or ""
    assert "signature=" in url
    got = httpx.get(url, timeout=10)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert verify_image(got.content).present
    tampered = url.replace("signature=", "signature=0")
    assert httpx.get(tampered, timeout=10).status_code in (403, 404)


def test_openai_speech_is_watermarked_audio(client: openai.OpenAI) -> None:
    wav = client.audio.speech.create(
        model="tts-1",
        voice="alloy",
        input="안녕하세요. 오늘도 같이 공부해요.",
        response_format="wav",
    )
    samples, rate = wav_samples(wav.content)
    assert samples.size > rate * 0.2 and np.abs(samples).max() > 0.01
    check = verify_audio(samples, rate)
    assert check.present, check
    mp3 = client.audio.speech.create(
        model="tts-1", voice="nova", input="Hello there, learner!", response_format="mp3"
    )
    assert mp3.response.headers["content-type"] == "audio/mpeg" and len(mp3.content) > 500


def test_kzone_thumbnail_job_from_202_to_stored_pictures(
    http: httpx.Client, router: tuple[RouterProcess, Path]
) -> None:
    body = {"prompt": "K-pop dance practice room", "width": 256, "height": 256, "n": 2}
    sent = http.post("/api/v1/kzone/generate/thumbnail", json=body, headers=ALICE)
    assert sent.status_code == 202, sent.text
    assert sent.headers["location"] == sent.json()["status_url"]
    view = wait_job(http, sent.json()["status_url"], "alice")
    assert view["status"] == "succeeded", view
    assert view["kind"] == "thumbnail" and view["priority"] == "low" and view["progress"] == 1.0
    result = view["result"]
    assert result["model"] == "tiny-sd" and result["watermarked"] is True
    assert [i["key"].split("/")[:3] for i in result["images"]] == [
        ["kzone", "generated", "alice"]
    ] * 2
    for item in result["images"]:
        png = httpx.get(item["url"], timeout=10).content
        assert hashlib.sha256(png).hexdigest() == item["sha256"]
        assert verify_image(png).present
    # Every picture has its row, of the kind the retention policy keeps 90 days.
    db = Database(f"sqlite:///{router[1] / 'megacity.db'}")
    try:
        with db.session() as session:
            rows = [session.get(StoredObject, i["key"]) for i in result["images"]]
        assert [(r.kind, r.owner_id) for r in rows if r is not None] == [("generated", "alice")] * 2
    finally:
        db.close()
    # Someone else cannot see the job.
    assert http.get(sent.json()["status_url"], headers={"X-User-Id": "bob"}).status_code == 404


def test_kzone_tts_job_and_idempotency(http: httpx.Client) -> None:
    body = {"text": "천천히 따라 읽어 보세요.", "style": "calm", "speed": 0.8, "seed": 3}
    headers = {**ALICE, "Idempotency-Key": "tts-lesson-1"}
    first = http.post("/api/v1/kzone/tts", json=body, headers=headers)
    again = http.post("/api/v1/kzone/tts", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]  # a client retry: one job
    view = wait_job(http, first.json()["status_url"], "alice")
    assert view["status"] == "succeeded", view
    result = view["result"]
    assert (result["style"], result["format"]) == ("calm", "wav")
    audio = httpx.get(result["audio"]["url"], timeout=10)
    assert audio.headers["content-type"] == "audio/wav"
    samples, rate = wav_samples(audio.content)
    assert rate == result["sample_rate"] and abs(samples.size / rate - result["duration_s"]) < 0.01
    assert verify_audio(samples, rate).present


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/images/generations", {"prompt": "x", "size": "big"}, 400, "invalid_size"),
        ("/v1/images/generations", {"prompt": "x", "size": "128x128"}, 400, "invalid_size"),
        ("/v1/images/generations", {"prompt": ""}, 400, "invalid_request"),
        ("/v1/images/generations", {"prompt": "x", "model": "tts-1"}, 400, "wrong_engine"),
        ("/v1/audio/speech", {"input": "안녕", "style": "furious"}, 400, "unknown_style"),
        ("/v1/audio/speech", {"input": "안녕", "response_format": "midi"}, 400, "invalid_request"),
        ("/v1/audio/speech", {"input": "가" * 5000}, 413, "input_too_long"),
        ("/api/v1/kzone/generate/thumbnail", {"prompt": "x", "n": 9}, 400, "invalid_request"),
        ("/api/v1/kzone/tts", {"text": "   "}, None, "empty_input"),
    ],
)
def test_bad_requests_get_clear_errors(
    http: httpx.Client, path: str, body: dict[str, Any], status: int | None, code: str
) -> None:
    answer = http.post(path, json=body, headers=ALICE)
    if status is None:  # accepted, then the job fails at once with the engine's reason
        assert answer.status_code == 202
        view = wait_job(http, answer.json()["status_url"], "alice")
        assert view["status"] == "failed" and view["error"]["code"] == code, view
        assert view["attempts"] == 1  # a bad request is not retried
        return
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_a_zone_without_generation_models_is_refused(http: httpx.Client) -> None:
    headers = {**ALICE, "X-Zone": "plain"}
    answer = http.post("/api/v1/kzone/tts", json={"text": "hello"}, headers=headers)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "no_model_for_zone"
    answer = http.post(
        "/v1/images/generations", json={"prompt": "x", "model": "tiny-sd"}, headers=headers
    )
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "model_not_allowed"


def test_the_openapi_document_describes_the_generation_bodies(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    for path, name in (
        ("/v1/images/generations", "ImageGenerationBody"),
        ("/v1/audio/speech", "SpeechBody"),
        ("/api/v1/kzone/generate/thumbnail", "ThumbnailBody"),
        ("/api/v1/kzone/tts", "TTSBody"),
    ):
        ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert ref == {"$ref": f"#/components/schemas/{name}"}
        assert "properties" in spec["components"]["schemas"][name]


def test_a_bad_idempotency_key_is_refused_before_anything_is_queued(http: httpx.Client) -> None:
    for path, body in (
        ("/api/v1/kzone/tts", {"text": "안녕"}),
        ("/v1/images/generations", {"prompt": "x", "size": "256x256"}),
    ):
        headers = {**ALICE, "Idempotency-Key": "k" * 201}
        answer = http.post(path, json=body, headers=headers)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_header"

"""Image, video and audio parts in /v1/chat/completions, through the router to a real VLM.

The vision node is `transformers serve` running a tiny random-weight LLaVA the tests built:
an image adds exactly 16 tokens to its prompt, so `usage.prompt_tokens` proves what reached
the model (its words are noise and never asserted). A stand-in vision node that records the
body it got shows what the router sends: data URLs it made itself, without metadata.

URLs are fetched by the router under the SSRF policy; this router allows 127.0.0.1 only
(`MEGACITY_MEDIA_FETCH_ALLOW_NETWORKS`, settings-only, empty by default) so a loopback server
can serve real images. 127.0.0.2 — loopback, not allowed — plays the private network, and
its server proves that no request ever reached it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI
from PIL import Image

from megacity.testing import RouterProcess, StandinProcess
from tests import video as V
from tests.api.cluster import ROUTER_ENV
from tests.hf_server import TransformersServer
from tests.media_server import MediaServer
from tests.vlm_models import IMAGE_TOKENS

PHOTO = V.jpeg_with_gps()


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _topology(vlm: str, vlm_model: str, inspect: str, llm: str) -> dict[str, Any]:
    def node(name: str, engine: str, url: str, models: list[str]) -> dict[str, Any]:
        return {"name": name, "engine": engine, "url": url, "models": models, "region": "seoul"}

    tiers = {"models": {"7b": "text-7b"}, "max": "7b"}
    return {
        "regions": [{"name": "seoul"}],
        "default_zone": "tutor",
        "nodes": [
            node("vlm", "vision", vlm, ["tiny-vl"]),
            node("inspect", "vision", inspect, ["probe-vl"]),
            node("llm", "llm", llm, ["text-7b"]),
        ],
        "models": [
            {
                "name": "tiny-vl",
                "engine": "vision",
                "tier": "7b",
                "modalities": ["text", "image"],
                "versions": [{"version": "v0", "served_as": vlm_model, "active": True}],
            },
            {"name": "probe-vl", "engine": "vision", "modalities": ["text", "image"]},
            {"name": "text-7b", "tier": "7b"},
        ],
        "zones": {
            "tutor": {"engines": {"llm": "text-7b", "vision": "tiny-vl"}, "tiers": tiers},
            "inspect": {"engines": {"llm": "text-7b", "vision": "probe-vl"}, "tiers": tiers},
            "plain": {"engines": {"llm": "text-7b"}, "tiers": tiers},
        },
    }


class Setup:
    def __init__(
        self,
        router: RouterProcess,
        inspect: StandinProcess,
        public: MediaServer,
        private: MediaServer,
    ):
        self.router, self.inspect, self.public, self.private = router, inspect, public, private

    def chat(
        self, content: list[dict[str, Any]], zone: str = "tutor", **extra: Any
    ) -> httpx.Response:
        body = {
            "model": "auto",
            "messages": [{"role": "user", "content": content}],
            "max_tokens": 2,
            **extra,
        }
        return httpx.post(
            f"{self.router.url}/v1/chat/completions",
            json=body,
            headers={"X-Zone": zone, "X-Prompt-Strategy": "none"},
            timeout=180,
        )


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, hf_server: TransformersServer, tiny_vlm: str
) -> Iterator[Setup]:
    tmp: Path = tmp_path_factory.mktemp("vision-chat")
    media = {
        "photo.jpg": (PHOTO, "image/jpeg"),
        "page.html": (b"<html><body>not a picture</body></html>", "text/html"),
        "clip.mp4": (V.moving_person(seconds=2.0, fps=10), "video/mp4"),
    }
    public = MediaServer("127.0.0.1", media).start()
    private = MediaServer("127.0.0.2", media).start()
    inspect, llm = StandinProcess("inspect"), StandinProcess("llm")
    router = None
    try:
        inspect.start()
        llm.start()
        config = tmp / "topology.yaml"
        config.write_text(yaml.safe_dump(_topology(hf_server.url, tiny_vlm, inspect.url, llm.url)))
        env = {
            **ROUTER_ENV,
            "MEGACITY_FIRST_BYTE_TIMEOUT_S": "120",
            "MEGACITY_READ_TIMEOUT_S": "120",
            "MEGACITY_MAX_BODY_BYTES": str(4 * 1024 * 1024),
            "MEGACITY_MEDIA_FETCH_ALLOW_NETWORKS": '["127.0.0.1/32"]',
            "MEGACITY_MEDIA_FETCH_TIMEOUT_S": "5",
            "MEGACITY_MEDIA_MAX_IMAGE_BYTES": str(2 * 1024 * 1024),
            "MEGACITY_MEDIA_KEYFRAMES": "3",
            "MEGACITY_DATA_DIR": str(tmp / "data"),
        }
        router = RouterProcess(str(config), env=env)
        router.start(timeout_s=60)
        yield Setup(router, inspect, public, private)
    finally:
        if router is not None:
            router.stop()
        for server in (inspect, llm):
            server.stop()
        public.stop()
        private.stop()


def _prompt_tokens(r: httpx.Response) -> int:
    assert r.status_code == 200, r.text
    return int(r.json()["usage"]["prompt_tokens"])


def test_an_image_reaches_the_vision_model(setup: Setup) -> None:
    text = {"type": "text", "text": "What is in the picture?"}
    image = {"type": "image_url", "image_url": {"url": _data_url(PHOTO, "image/jpeg")}}
    one = setup.chat([text, image])
    assert one.headers["X-MegaCity-Model"] == "tiny-vl"
    with_one, with_two = _prompt_tokens(one), _prompt_tokens(setup.chat([text, image, image]))
    without = _prompt_tokens(setup.chat([text], model="tiny-vl"))
    assert with_one - without == IMAGE_TOKENS
    assert with_two - with_one == IMAGE_TOKENS


def test_the_router_fetches_image_urls_itself(setup: Setup) -> None:
    before = setup.public.hits["photo.jpg"]
    text = {"type": "text", "text": "What is in the picture?"}
    url = {"type": "image_url", "image_url": {"url": f"{setup.public.url}/photo.jpg"}}
    assert _prompt_tokens(setup.chat([text, url])) > IMAGE_TOKENS
    assert setup.public.hits["photo.jpg"] == before + 1  # the router, not the model server


def test_a_video_becomes_keyframes_for_an_image_model(setup: Setup) -> None:
    text = {"type": "text", "text": "What happens in the video?"}
    video = {"type": "video_url", "video_url": {"url": f"{setup.public.url}/clip.mp4"}}
    without = _prompt_tokens(setup.chat([text], model="tiny-vl"))
    with_video = _prompt_tokens(setup.chat([text, video]))
    assert with_video - without >= 3 * IMAGE_TOKENS  # three keyframes (and a note of their times)


def test_the_stream_is_relayed_and_the_openai_client_sends_image_parts(setup: Setup) -> None:
    client = OpenAI(
        base_url=f"{setup.router.url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=180,
        default_headers={"X-Zone": "tutor"},
    )
    content: Any = [
        {"type": "text", "text": "Describe this homework."},
        {
            "type": "image_url",
            "image_url": {"url": _data_url(PHOTO, "image/jpeg"), "detail": "low"},
        },
    ]
    answer = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": content}], max_tokens=2
    )
    assert answer.usage is not None and answer.usage.prompt_tokens > IMAGE_TOKENS
    chunks = list(
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": content}], max_tokens=3, stream=True
        )
    )
    assert len(chunks) >= 2
    assert chunks[-1].choices == [] or chunks[-1].choices[0].finish_reason is not None


def test_what_reaches_a_node_is_the_routers_own_data_url_without_metadata(setup: Setup) -> None:
    setup.inspect.configure(reset_stats=True)
    text = {"type": "text", "text": "Where was this taken?"}
    photo = {"type": "image_url", "image_url": {"url": f"{setup.public.url}/photo.jpg"}}
    audio_wav = V.SHARED / "audio" / "en1.wav"
    audio = {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(audio_wav.read_bytes()).decode(), "format": "wav"},
    }
    r = setup.chat([text, photo], zone="inspect")
    assert r.status_code == 200, r.text
    [message] = setup.inspect.stats()["last_body"]["messages"]
    sent = message["content"][1]["image_url"]["url"]
    assert sent.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(sent.split(",", 1)[1])))
    assert not image.getexif() and image.size == (512, 512)  # GPS gone, orientation applied
    r = setup.chat([text, audio], zone="inspect")
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_vision_model"  # no audio model


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("PRIVATE/photo.jpg", 400, "url_forbidden"),  # loopback, but not allowed
        ("PUBLIC/redirect?to=PRIVATE/photo.jpg", 400, "url_forbidden"),
        ("PUBLIC/redirect?to=http://169.254.169.254/latest/meta-data/", 400, "url_forbidden"),
        ("http://169.254.169.254/latest/meta-data/", 400, "url_forbidden"),
        ("http://10.0.0.1/photo.jpg", 400, "url_forbidden"),
        ("http://[::ffff:127.0.0.2]/photo.jpg", 400, "url_forbidden"),
        ("PUBLIC/endless", 413, "media_too_large"),  # a 1 GB body, cut at 2 MB
        ("PUBLIC/page.html", 415, "unsupported_image"),
        ("file:///etc/passwd", 400, "url_invalid"),
    ],
)
def test_ssrf_and_bad_media_are_refused(setup: Setup, url: str, status: int, code: str) -> None:
    url = url.replace("PRIVATE", setup.private.url).replace("PUBLIC", setup.public.url)
    before = setup.private.total
    image = {"type": "image_url", "image_url": {"url": url}}
    r = setup.chat([{"type": "text", "text": "look"}, image])
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["param"] == "messages.0.content.1.image_url"
    assert setup.private.total == before == 0  # nothing ever reached the private server


def test_modality_routing_refuses_clearly(setup: Setup) -> None:
    image = {"type": "image_url", "image_url": {"url": _data_url(PHOTO, "image/jpeg")}}
    r = setup.chat([{"type": "text", "text": "look"}, image], zone="plain")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "no_vision_model" and r.json()["error"]["zone"] == "plain"
    r = setup.chat([{"type": "text", "text": "look"}, image], model="text-7b")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_modality"
    r = setup.chat([{"type": "text", "text": "look"}, {"type": "file", "file": {}}])
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_content_part"
    r = setup.chat([{"type": "text", "text": "many"}] + [image] * 9)
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_media_parts"

"""The official openai client through the router (uvicorn process) to stand-in vLLM nodes."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.api.cluster import Cluster

ESSAY = "다음 논술 답안을 첨삭해 주세요. 주장: 인공지능은 교육을 바꾼다. 근거는 다음과 같다."


def test_chat_non_streaming(cluster: Cluster) -> None:
    client = cluster.client(**{"X-Zone": "edu"})
    raw = client.chat.completions.with_raw_response.create(
        model="kr-14b", messages=[{"role": "user", "content": "안녕하세요"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content.endswith("answer from kr-14b-v1")
    assert raw.headers["X-MegaCity-Model"] == "kr-14b"
    assert raw.headers["X-MegaCity-Node"] in ("seoul-a", "seoul-b")
    assert raw.headers["X-MegaCity-Tier"] == "14b"
    assert float(raw.headers["X-MegaCity-Route-Ms"]) >= 0
    assert raw.headers["X-MegaCity-Version"] == "v1"


def test_chat_streaming(cluster: Cluster) -> None:
    client = cluster.client(**{"X-Zone": "edu"})
    with client.chat.completions.with_streaming_response.create(
        model="small-7b", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as response:
        assert response.headers["X-MegaCity-Model"] == "small-7b"
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.startswith("[seoul-")
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len(chunks) == 9  # 8 content chunks and the final one


def test_completions_and_alias(cluster: Cluster) -> None:
    client = cluster.client(**{"X-Zone": "edu"})
    raw = client.completions.with_raw_response.create(model="tiny", prompt="Say hi")
    assert raw.parse().choices[0].text.endswith("answer from small-7b")
    assert raw.headers["X-MegaCity-Model"] == "small-7b"
    stream = client.completions.create(model="tiny", prompt="Say hi", stream=True)
    assert "".join(c.choices[0].text for c in stream).startswith("[seoul-")


def test_models_lists_names_aliases_and_auto(cluster: Cluster) -> None:
    ids = {m.id for m in cluster.client().models.list()}
    assert {"auto", "kr-14b", "kr-tutor", "small-7b", "tiny", "huge-70b"} <= ids


@pytest.mark.parametrize(
    ("zone", "locale", "prompt", "model", "tier"),
    [
        ("edu", "ko", "광합성이 뭐야?", "small-7b", "7b"),  # short question
        ("edu", "ko", ESSAY, "big-34b", "34b"),
        ("edu", "en", "Explain why the sky is blue.", "en-14b", "14b"),  # locale variant
        ("lite", "en", "What is a noun?", "small-7b", "7b"),
        ("lite", "en", "Prove step by step that sqrt(2) is irrational.", "en-14b", "14b"),
    ],
)
def test_auto_picks_zone_tier_locale_model(
    cluster: Cluster, zone: str, locale: str, prompt: str, model: str, tier: str
) -> None:
    client = cluster.client(**{"X-Zone": zone, "X-Locale": locale})
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": prompt}]
    )
    assert (raw.headers["X-MegaCity-Model"], raw.headers["X-MegaCity-Tier"]) == (model, tier)


def test_image_parts_never_go_to_a_text_only_model(cluster: Cluster) -> None:
    # The classifier puts a picture at the 70b tier, but this zone's 70b model reads text
    # only and the zone has no vision model: a clear 400, never the text model's own error.
    client = cluster.client(**{"X-Zone": "edu"})
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="auto",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                }
            ],
        )
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "no_vision_model" and error["zone"] == "edu"


def test_two_nodes_share_the_load_and_region_is_preferred(cluster: Cluster) -> None:
    client = cluster.client(**{"X-Zone": "lite"})
    seen: dict[str, int] = {}
    for i in range(20):  # twenty conversations (one conversation would stay on one node)
        raw = client.chat.completions.with_raw_response.create(
            model="small-7b", messages=[{"role": "user", "content": f"hi, I am learner {i}"}]
        )
        node = raw.headers["X-MegaCity-Node"]
        seen[node] = seen.get(node, 0) + 1
    assert set(seen) == {"seoul-a", "seoul-b"}
    assert min(seen.values()) >= 5
    tokyo = cluster.client(**{"X-Zone": "lite", "X-Region": "tokyo"})
    raw = tokyo.chat.completions.with_raw_response.create(
        model="small-7b", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["X-MegaCity-Node"] == "tokyo"


def test_model_not_allowed_in_zone(cluster: Cluster) -> None:
    client = cluster.client(**{"X-Zone": "lite"})
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(
            model="huge-70b", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.body["code"] == "model_not_allowed"  # type: ignore[index]


def test_prompt_strategy_header_and_zone_default(cluster: Cluster) -> None:
    client = cluster.client(**{"X-Zone": "edu", "X-Prompt-Strategy": "math_tutor"})
    client.chat.completions.create(model="kr-14b", messages=[{"role": "user", "content": "1+1=3?"}])
    bodies = [n.stats()["last_body"] for n in cluster.nodes.values()]
    systems = [b["messages"][0]["content"] for b in bodies if b and "messages" in b]
    assert any("수학 튜터" in s for s in systems)
    with httpx.Client(base_url=cluster.url) as http:
        r = http.post(
            "/v1/chat/completions",
            headers={"X-Zone": "edu", "X-Prompt-Strategy": "no-such-strategy"},
            json={"model": "kr-14b", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_strategy"

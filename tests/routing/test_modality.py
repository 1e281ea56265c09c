"""Modality routing: a chat's image/video/audio parts go only to a model that takes them."""

from __future__ import annotations

from typing import Any

import pytest

from megacity.config.topology import Tier, parse_topology
from megacity.errors import BadRequest
from megacity.routing.context import RequestContext
from megacity.routing.gateway import chat_prompt
from megacity.routing.modality import missing, part_modalities
from megacity.routing.registry import ModelRegistry
from megacity.routing.selector import AUTO, ModelSelector, PromptInfo

IMAGE = frozenset({"image"})


def topology() -> dict[str, Any]:
    def node(name: str, engine: str, models: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "engine": engine,
            "url": f"http://10.0.0.1/{name}",
            "models": models,
            "region": "r",
        }

    return {
        "regions": [{"name": "r"}],
        "nodes": [
            node("text", "llm", ["small-7b", "mid-14b", "big-70b"]),
            node("mm", "llm", ["omni-70b"]),
            node("vl", "vision", ["vl-7b", "vl-video"]),
        ],
        "models": [
            {"name": "small-7b", "tier": "7b"},
            {"name": "mid-14b", "tier": "14b"},
            {"name": "big-70b", "tier": "70b"},
            {"name": "omni-70b", "tier": "70b", "modalities": ["text", "image", "audio"]},
            {"name": "vl-7b", "engine": "vision", "tier": "7b", "modalities": ["text", "image"]},
            {"name": "vl-video", "engine": "vision", "modalities": ["text", "video"]},
        ],
        "zones": {
            "plain": {
                "engines": {"llm": "mid-14b"},
                "tiers": {"models": {"7b": "small-7b", "14b": "mid-14b"}},
            },
            "vision": {
                "engines": {"llm": "mid-14b", "vision": "vl-7b"},
                "tiers": {"models": {"7b": "small-7b", "14b": "mid-14b", "70b": "big-70b"}},
            },
            "omni": {
                "engines": {"llm": "mid-14b", "vision": "vl-7b"},
                "tiers": {"models": {"14b": "mid-14b", "70b": "omni-70b"}, "max": "70b"},
            },
            "video": {"engines": {"llm": "mid-14b", "vision": "vl-video"}},
        },
    }


@pytest.fixture
def selector() -> ModelSelector:
    topo = parse_topology(topology())
    return ModelSelector(topo, ModelRegistry(topo))


def _ctx(zone: str) -> RequestContext:
    return RequestContext(request_id="t", zone=zone)


def _prompt(*modalities: str) -> PromptInfo:
    return PromptInfo(
        "what is in this picture?", multimodal_parts=1, modalities=frozenset(modalities)
    )


@pytest.mark.parametrize(
    ("zone", "needed", "model"),
    [
        ("vision", ("image",), "vl-7b"),  # the 70b tier model is text-only: the zone's VLM
        ("omni", ("image",), "omni-70b"),  # the tier's own model takes images: kept
        ("omni", ("audio",), "omni-70b"),
        ("omni", ("video",), "omni-70b"),  # as keyframes
        ("video", ("video",), "vl-video"),
    ],
)
def test_auto_routes_parts_to_a_model_that_takes_them(
    selector: ModelSelector, zone: str, needed: tuple[str, ...], model: str
) -> None:
    decision = selector.select(AUTO, _ctx(zone), _prompt(*needed))
    assert decision.model.name == model
    assert not missing(decision.model.modalities, frozenset(needed))


def test_a_zone_without_a_vision_model_says_so(selector: ModelSelector) -> None:
    with pytest.raises(BadRequest) as info:
        selector.select(AUTO, _ctx("plain"), _prompt("image"))
    assert info.value.code == "no_vision_model"
    assert info.value.extra["zone"] == "plain" and "'plain'" in info.value.message
    with pytest.raises(BadRequest) as info:  # an image-only VLM cannot take audio
        selector.select(AUTO, _ctx("vision"), _prompt("audio"))
    assert info.value.code == "no_vision_model"


def test_a_named_text_model_is_refused_with_a_hint(selector: ModelSelector) -> None:
    with pytest.raises(BadRequest) as info:
        selector.select("mid-14b", _ctx("vision"), _prompt("image"))
    assert info.value.code == "unsupported_modality"
    assert "'vl-7b'" in info.value.message
    assert selector.select("vl-7b", _ctx("vision"), _prompt("image")).model.name == "vl-7b"


def test_text_only_chats_are_untouched(selector: ModelSelector) -> None:
    decision = selector.select(AUTO, _ctx("vision"), PromptInfo("hello"))
    assert decision.model.name == "small-7b"
    assert decision.tier is Tier.T7B


def test_part_types_and_what_covers_them() -> None:
    assert part_modalities(["text", "image_url", "input_image"]) == IMAGE
    assert part_modalities(["video_url", "input_audio"]) == {"video", "audio"}
    with pytest.raises(BadRequest) as info:
        part_modalities(["file"])
    assert info.value.code == "unsupported_content_part"
    assert missing(("text", "image"), frozenset({"video"})) == frozenset()
    assert missing(("text",), frozenset({"image", "audio"})) == {"image", "audio"}


def test_chat_prompt_reads_parts_of_every_message() -> None:
    messages = [
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "video_url", "video_url": {"url": "x"}},
            ],
        },
    ]
    prompt = chat_prompt(messages)
    assert prompt.modalities == {"image", "video"}  # a system message's image is not skipped
    assert (prompt.text.strip(), prompt.multimodal_parts) == ("hi", 1)
    assert chat_prompt([{"role": "user", "content": "plain"}]).modalities == frozenset()


def test_for_tier_clamps_to_the_zone(selector: ModelSelector) -> None:
    assert selector.for_tier(_ctx("plain"), Tier.T34B).model.name == "mid-14b"
    assert selector.for_tier(_ctx("vision"), Tier.T7B).model.name == "small-7b"
    assert selector.for_tier(_ctx("omni"), Tier.T7B).model.name == "mid-14b"  # min of tiers

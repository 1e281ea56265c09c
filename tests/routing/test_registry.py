"""Model registry: names, aliases, locale variants and run-time version switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from megacity.config.topology import Engine, Tier, load_topology
from megacity.errors import BadRequest, NotFound
from megacity.routing.registry import ModelRegistry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"


@pytest.fixture
def registry() -> ModelRegistry:
    return ModelRegistry(load_topology(EXAMPLE, env={}))


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("llama-3.1-8b", "llama-3.1-8b"),
        ("llama-8b", "llama-3.1-8b"),
        ("mpc-light", "llama-3.1-8b"),
        ("kr-essay-tutor", "seoul-medium-kr"),
        ("qwen-14b", "qwen2.5-14b"),
        ("skill-tutor", "qwen2.5-32b"),
        ("qwen-72b", "qwen2.5-72b"),
        ("whisper-1", "whisper-large-v3"),
        ("blazepose", "pose-landmarker-full"),
    ],
)
def test_names_and_aliases_resolve(registry: ModelRegistry, name: str, canonical: str) -> None:
    assert name in registry
    assert registry.canonical(name) == canonical
    assert registry.resolve(name).name == canonical
    assert registry.model(name).name == canonical


@pytest.mark.parametrize(
    ("name", "engine", "tier", "version", "served_as"),
    [
        ("llama-8b", Engine.LLM, Tier.T7B, "3.1", "meta-llama/Llama-3.1-8B-Instruct"),
        ("seoul-medium-kr", Engine.LLM, Tier.T14B, "v1", "seoul-medium-kr-v1"),
        ("qwen-72b", Engine.LLM, Tier.T70B, "2.5", "Qwen/Qwen2.5-72B-Instruct"),
        ("whisper-1", Engine.SPEECH, None, None, "whisper-large-v3"),  # no versions: own name
    ],
)
def test_resolve_gives_the_active_version(
    registry: ModelRegistry,
    name: str,
    engine: Engine,
    tier: Tier | None,
    version: str | None,
    served_as: str,
) -> None:
    resolved = registry.resolve(name)
    assert (resolved.engine, resolved.tier, resolved.version, resolved.served_as) == (
        engine,
        tier,
        version,
        served_as,
    )


@pytest.mark.parametrize("name", ["gpt-4o", "", "Llama-8B", "seoul-medium-kr-v1"])
def test_unknown_model_is_not_found(registry: ModelRegistry, name: str) -> None:
    assert name not in registry
    with pytest.raises(NotFound) as info:
        registry.resolve(name)
    assert info.value.code == "model_not_found"
    assert info.value.status == 404
    assert info.value.param == "model"
    assert repr(name) in info.value.message


@pytest.mark.parametrize(
    ("name", "locale", "expected"),
    [
        ("seoul-medium-kr", "en", "qwen2.5-14b"),
        ("seoul-medium-kr", "ja", "qwen2.5-14b"),
        ("seoul-medium-kr", "zh", "qwen2.5-14b"),
        ("seoul-medium-kr", "ko", "seoul-medium-kr"),  # no variant: the model itself
        ("seoul-medium-kr", None, "seoul-medium-kr"),
        ("kr-essay-tutor", "en", "qwen2.5-14b"),  # aliases too
        ("llama-3.1-8b", "en", "llama-3.1-8b"),
        ("qwen2.5-32b", "ja", "qwen2.5-32b"),
    ],
)
def test_localized(registry: ModelRegistry, name: str, locale: str | None, expected: str) -> None:
    assert registry.localized(name, locale) == expected


def test_activate_switches_served_as_at_run_time(registry: ModelRegistry) -> None:
    assert registry.resolve("seoul-medium-kr").served_as == "seoul-medium-kr-v1"
    switched = registry.activate("kr-essay-tutor", "v2")
    assert (switched.version, switched.served_as) == ("v2", "seoul-medium-kr-v2")
    assert registry.resolve("seoul-medium-kr") == switched
    assert registry.resolve("kr-essay-tutor").served_as == "seoul-medium-kr-v2"
    back = registry.activate("seoul-medium-kr", "v1")
    assert back.served_as == "seoul-medium-kr-v1"


def test_activate_does_not_touch_other_models(registry: ModelRegistry) -> None:
    before = registry.resolve("qwen2.5-14b")
    registry.activate("seoul-medium-kr", "v2")
    assert registry.resolve("qwen2.5-14b") == before


def test_activate_unknown_version_lists_versions(registry: ModelRegistry) -> None:
    with pytest.raises(BadRequest) as info:
        registry.activate("seoul-medium-kr", "v3")
    assert info.value.code == "unknown_version"
    assert info.value.param == "version"
    assert "v1, v2" in info.value.message
    assert registry.resolve("seoul-medium-kr").version == "v1"  # unchanged


def test_activate_on_a_model_without_versions(registry: ModelRegistry) -> None:
    with pytest.raises(BadRequest, match="versions: none"):
        registry.activate("whisper-large-v3", "v1")


def test_activate_unknown_model_is_not_found(registry: ModelRegistry) -> None:
    with pytest.raises(NotFound) as info:
        registry.activate("gpt-4o", "v1")
    assert info.value.code == "model_not_found"


def test_names_by_engine(registry: ModelRegistry) -> None:
    assert registry.names(Engine.SPEECH) == ["whisper-large-v3"]
    assert registry.names(Engine.POSE) == ["pose-landmarker-full"]
    assert set(registry.names(Engine.LLM)) == {
        "llama-3.1-8b",
        "seoul-medium-kr",
        "qwen2.5-14b",
        "qwen2.5-32b",
        "qwen2.5-72b",
    }
    assert registry.names(Engine.IMAGE) == ["sdxl-turbo"]
    assert registry.names(Engine.TTS) == ["mms-tts-kor"]
    assert registry.names(Engine.VISION) == ["qwen2-vl-7b"]
    assert registry.names(Engine.FACE) == ["face-landmarker"]
    assert len(registry.names()) == 11


def test_describe_shape(registry: ModelRegistry) -> None:
    registry.activate("seoul-medium-kr", "v2")
    described = {m["name"]: m for m in registry.describe()}
    assert len(described) == 11
    seoul = described["seoul-medium-kr"]
    assert set(seoul) == {
        "name",
        "engine",
        "tier",
        "aliases",
        "locales",
        "modalities",
        "active_version",
        "versions",
        "description",
    }
    assert seoul["engine"] == "llm"
    assert seoul["tier"] == "14b"
    assert seoul["aliases"] == ["kr-essay-tutor"]
    assert seoul["locales"] == {"en": "qwen2.5-14b", "ja": "qwen2.5-14b", "zh": "qwen2.5-14b"}
    assert seoul["active_version"] == "v2"
    assert [(v["version"], v["served_as"], v["active"]) for v in seoul["versions"]] == [
        ("v1", "seoul-medium-kr-v1", False),
        ("v2", "seoul-medium-kr-v2", True),
    ]
    assert seoul["modalities"] == ["text"]
    assert described["qwen2-vl-7b"]["modalities"] == ["text", "image", "video"]
    whisper = described["whisper-large-v3"]
    assert (whisper["engine"], whisper["tier"], whisper["active_version"]) == ("speech", None, None)
    assert whisper["versions"] == []

"""The topology file: the shipped example loads, and every kind of mistake names its key."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from megacity.config.topology import (
    Engine,
    Tier,
    Topology,
    TopologyError,
    load_topology,
    parse_topology,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"
RAW: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))

Mutation = Callable[[dict[str, Any]], None]


def _node(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in data["nodes"] if n["name"] == name)


def _model(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in data["models"] if m["name"] == name)


def _mutated(mutate: Mutation) -> dict[str, Any]:
    data = copy.deepcopy(RAW)
    mutate(data)
    return data


def _add_orphan_model(data: dict[str, Any], use: Callable[[str], None]) -> None:
    """Declare a model that no node serves, and let `use` refer to it."""
    data["models"].append({"name": "orphan-7b", "tier": "7b"})
    use("orphan-7b")


# --- the shipped example ------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Topology:
    return load_topology(EXAMPLE, env={})


def test_example_has_the_five_platform_zones(example: Topology) -> None:
    assert set(example.zones) == {"univprep", "skillprep", "ktube", "mpcstudy", "dreamseed"}
    assert example.default_zone == "univprep"


def test_example_has_two_llm_nodes_for_one_model_in_one_region(example: Topology) -> None:
    serving = [
        n
        for n in example.nodes
        if n.engine is Engine.LLM
        and n.kind == "local"
        and n.region == "kr-seoul"
        and "seoul-medium-kr" in n.models
    ]
    assert len(serving) >= 2


def test_example_has_a_node_in_a_second_region_and_a_cloud_node(example: Topology) -> None:
    regions = {n.region for n in example.nodes if n.kind == "local" and n.engine is Engine.LLM}
    assert {"kr-seoul", "jp-tokyo"} <= regions
    cloud = [n for n in example.nodes if n.kind == "cloud"]
    assert [n.name for n in cloud] == ["cloud-us-1"]


def test_example_llm_nodes_are_remote_and_urls_are_normalised(example: Topology) -> None:
    for node in example.nodes:
        if node.engine is Engine.LLM:
            assert not node.in_process
            assert node.url.startswith("http://") and not node.url.endswith("/")
    in_process = {n.name for n in example.nodes if n.in_process}
    assert in_process == {"speech-local", "pose-local", "image-local", "tts-local", "face-local"}
    vision = [n for n in example.nodes if n.engine is Engine.VISION]
    assert [n.name for n in vision] == ["gpu-seoul-vl"] and not vision[0].in_process


def test_example_vision_model_and_zones(example: Topology) -> None:
    vl = example.model("qwen2-vl-7b")
    assert vl.engine is Engine.VISION and set(vl.modalities) == {"text", "image", "video"}
    assert example.model("qwen2.5-72b").modalities == ("text",)  # the default
    for zone in ("ktube", "dreamseed"):
        assert example.zones[zone].engines[Engine.VISION] == "qwen2-vl-7b"


def test_example_models_tiers_and_active_versions(example: Topology) -> None:
    assert example.model("seoul-medium-kr").tier is Tier.T14B
    assert example.model("qwen2.5-72b").tier is Tier.T70B
    active = [v.version for v in example.model("seoul-medium-kr").versions if v.active]
    assert active == ["v1"]
    assert example.zones["dreamseed"].tiers.min is Tier.T34B
    assert example.zones["mpcstudy"].tiers.max is Tier.T14B


def test_parse_topology_accepts_the_raw_example() -> None:
    topo = parse_topology(copy.deepcopy(RAW))
    assert len(topo.nodes) == len(RAW["nodes"])


def test_trailing_slash_of_a_node_url_is_removed() -> None:
    topo = parse_topology(
        _mutated(lambda d: _node(d, "gpu-seoul-a").update(url="http://10.0.0.1:8000/"))
    )
    assert next(n for n in topo.nodes if n.name == "gpu-seoul-a").url == "http://10.0.0.1:8000"


# --- bad mappings: each names the key ----------------------------------------------

BAD: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("unknown top-level key", lambda d: d.update(clusters=[]), ("clusters", "unknown key")),
    (
        "unknown key in a node",
        lambda d: _node(d, "gpu-seoul-b").update(gpus=8),
        ("nodes.gpu-seoul-b.gpus", "unknown key"),
    ),
    (
        "unknown key in a zone",
        lambda d: d["zones"]["ktube"].update(colour="red"),
        ("zones.ktube.colour", "unknown key"),
    ),
    (
        "ftp url",
        lambda d: _node(d, "gpu-seoul-a").update(url="ftp://10.0.0.1/models"),
        ("nodes.gpu-seoul-a.url", "ftp://10.0.0.1/models"),
    ),
    (
        "not a url",
        lambda d: _node(d, "gpu-tokyo-a").update(url="gpu tokyo a"),
        ("nodes.gpu-tokyo-a.url", "not an http(s) URL"),
    ),
    (
        "unknown region of a node",
        lambda d: _node(d, "gpu-tokyo-a").update(region="mars-1"),
        ("nodes.gpu-tokyo-a.region", "mars-1"),
    ),
    (
        "node serves an unknown model",
        lambda d: _node(d, "gpu-seoul-c")["models"].append("gpt-9"),
        ("nodes.gpu-seoul-c.models", "unknown model 'gpt-9'"),
    ),
    (
        "node engine differs from the model's engine",
        lambda d: _node(d, "gpu-seoul-a")["models"].append("whisper-large-v3"),
        ("nodes.gpu-seoul-a.models", "whisper-large-v3", "speech"),
    ),
    (
        "zone names an unknown model",
        lambda d: d["zones"]["mpcstudy"]["allowed_models"].append("gpt-9"),
        ("zones.mpcstudy.allowed_models", "unknown model 'gpt-9'"),
    ),
    (
        "zone tier names an unknown model",
        lambda d: d["zones"]["skillprep"]["tiers"]["models"].update({"7b": "gpt-9"}),
        ("zones.skillprep.tiers.models.7b", "gpt-9"),
    ),
    (
        "zone names a model nobody serves",
        lambda d: _add_orphan_model(d, d["zones"]["mpcstudy"]["allowed_models"].append),
        ("zones.mpcstudy.allowed_models", "no node serves", "orphan-7b"),
    ),
    (
        "zone engine model of the wrong engine",
        lambda d: d["zones"]["ktube"]["engines"].update(speech="llama-3.1-8b"),
        ("zones.ktube.engines.speech", "llama-3.1-8b"),
    ),
    (
        "locale variant names an unknown model",
        lambda d: _model(d, "seoul-medium-kr")["locales"].update(en="gpt-9"),
        ("models.seoul-medium-kr.locales.en", "unknown model 'gpt-9'"),
    ),
    (
        "locale variant names a model nobody serves",
        lambda d: _add_orphan_model(
            d, lambda name: _model(d, "seoul-medium-kr")["locales"].update(ja=name)
        ),
        ("models.seoul-medium-kr.locales.ja", "no node serves", "orphan-7b"),
    ),
    (
        "two active versions",
        lambda d: _model(d, "seoul-medium-kr")["versions"][1].update(active=True),
        ("models.seoul-medium-kr", "exactly one version must be active"),
    ),
    (
        "no active version",
        lambda d: _model(d, "seoul-medium-kr")["versions"][0].update(active=False),
        ("models.seoul-medium-kr", "exactly one version must be active"),
    ),
    (
        "duplicate node names",
        lambda d: d["nodes"].append(copy.deepcopy(_node(d, "gpu-seoul-b"))),
        ("nodes", "duplicate name 'gpu-seoul-b'"),
    ),
    (
        "alias equal to another model's name",
        lambda d: _model(d, "llama-3.1-8b")["aliases"].append("qwen2.5-14b"),
        ("models (names and aliases)", "duplicate name 'qwen2.5-14b'"),
    ),
    (
        "tiers.min above tiers.max",
        lambda d: d["zones"]["skillprep"]["tiers"].update(min="70b", max="14b"),
        ("zones.skillprep.tiers", "tiers.min is above tiers.max"),
    ),
    (
        "unknown default_zone",
        lambda d: d.update(default_zone="atlantis"),
        ("default_zone", "atlantis"),
    ),
    (
        "llm node with url local",
        lambda d: _node(d, "gpu-seoul-b").update(url="local"),
        ("nodes.gpu-seoul-b.url", "remote"),
    ),
    (
        "llm model without a tier",
        lambda d: _model(d, "qwen2.5-72b").pop("tier"),
        ("models.qwen2.5-72b", "needs a tier"),
    ),
    ("no regions", lambda d: d.update(regions=[]), ("regions",)),
    (
        "vision node with url local",
        lambda d: _node(d, "gpu-seoul-vl").update(url="local"),
        ("nodes.gpu-seoul-vl.url", "vision nodes are remote"),
    ),
    (
        "remote face node",
        lambda d: _node(d, "face-local").update(url="http://10.0.0.9:8000"),
        ("nodes.face-local.url", "face nodes run in-process"),
    ),
    (
        "vision model that sees nothing",
        lambda d: _model(d, "qwen2-vl-7b").update(modalities=["text"]),
        ("models.qwen2-vl-7b", "image (or video)"),
    ),
    (
        "modalities without text",
        lambda d: _model(d, "qwen2-vl-7b").update(modalities=["image"]),
        ("models.qwen2-vl-7b", "must include text"),
    ),
    (
        "unknown modality",
        lambda d: _model(d, "qwen2-vl-7b").update(modalities=["text", "smell"]),
        ("models.qwen2-vl-7b.modalities",),
    ),
    (
        "zone vision entry naming an llm model",
        lambda d: d["zones"]["ktube"]["engines"].update(vision="llama-3.1-8b"),
        ("zones.ktube.engines.vision", "llama-3.1-8b"),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in BAD], ids=[c[0] for c in BAD]
)
def test_bad_topology_names_the_key(mutate: Mutation, expected: tuple[str, ...]) -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology(_mutated(mutate), "site.yaml")
    message = str(info.value)
    assert message.startswith("site.yaml: invalid topology")
    for part in expected:
        assert part in message


def test_parse_topology_rejects_a_non_mapping() -> None:
    with pytest.raises(TopologyError, match="invalid topology"):
        parse_topology([1, 2, 3])  # type: ignore[arg-type]


# --- files --------------------------------------------------------------------------


FILES: list[tuple[str, str, str]] = [
    ("list at top level", "- regions\n- nodes\n", "must be a mapping at the top level"),
    ("scalar at top level", "just a string\n", "must be a mapping at the top level"),
    ("empty file", "", "must be a mapping at the top level"),
    ("invalid yaml", "regions: [\n  - name: a: b\n", "not valid YAML"),
    ("unknown key in file", "regions: [{name: r1}]\nnodez: []\n", "nodez: unknown key"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in FILES], ids=[c[0] for c in FILES]
)
def test_bad_topology_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TopologyError) as info:
        load_topology(path, env={})
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(TopologyError, match="cannot read topology file") as info:
        load_topology(path, env={})
    assert str(path) in str(info.value)


def test_a_folder_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read topology file"):
        load_topology(tmp_path, env={})


def test_non_utf8_file_is_a_topology_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("regions:\n  - name: r1\n    description: Séoul\n".encode("latin-1"))
    with pytest.raises(TopologyError, match=re.escape(str(path))):
        load_topology(path, env={})


# --- MEGACITY_<ENGINE>_MODEL overrides -------------------------------------------


def _with_remote_speech_node(tmp_path: Path) -> Path:
    data = copy.deepcopy(RAW)
    data["nodes"].append(
        {
            "name": "speech-remote",
            "engine": "speech",
            "url": "http://10.0.0.9:9000",
            "models": ["whisper-large-v3"],
            "region": "jp-tokyo",
            "options": {"model": "large-v3"},
        }
    )
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _options(topo: Topology, name: str) -> dict[str, Any]:
    return next(n for n in topo.nodes if n.name == name).options


def test_speech_model_override_applies_to_the_in_process_node_only(tmp_path: Path) -> None:
    path = _with_remote_speech_node(tmp_path)
    topo = load_topology(path, env={"MEGACITY_SPEECH_MODEL": "medium"})
    local = _options(topo, "speech-local")
    assert local["model"] == "medium"
    assert local["device"] == "auto" and local["compute_type"] == "int8"  # others kept
    assert _options(topo, "speech-remote")["model"] == "large-v3"
    assert _options(topo, "pose-local")["model"] == "pose_landmarker_full.task"


@pytest.mark.parametrize(
    ("env", "speech", "pose"),
    [
        ({}, "small", "pose_landmarker_full.task"),
        ({"MEGACITY_SPEECH_MODEL": ""}, "small", "pose_landmarker_full.task"),
        ({"MEGACITY_POSE_MODEL": "lite.task"}, "small", "lite.task"),
        ({"MEGACITY_LLM_MODEL": "x"}, "small", "pose_landmarker_full.task"),
    ],
)
def test_model_overrides_table(env: dict[str, str], speech: str, pose: str) -> None:
    topo = load_topology(EXAMPLE, env=env)
    assert _options(topo, "speech-local")["model"] == speech
    assert _options(topo, "pose-local")["model"] == pose
    assert all("model" not in n.options for n in topo.nodes if n.engine is Engine.LLM)


def test_override_reads_os_environ_when_env_is_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEGACITY_SPEECH_MODEL", "tiny")
    topo = load_topology(EXAMPLE)
    assert _options(topo, "speech-local")["model"] == "tiny"

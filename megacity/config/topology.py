"""The topology file: regions, nodes, models and zones, validated once at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)


class Engine(StrEnum):
    """The kinds of engine a node can run."""

    LLM = "llm"
    SPEECH = "speech"
    POSE = "pose"
    IMAGE = "image"
    TTS = "tts"
    VISION = "vision"  # vision-language models on OpenAI-compatible nodes (vLLM)
    FACE = "face"  # MediaPipe Face Landmarker, in-process


class Tier(StrEnum):
    """Complexity tiers, smallest first."""

    T7B = "7b"
    T14B = "14b"
    T34B = "34b"
    T70B = "70b"

    @property
    def rank(self) -> int:
        return _TIER_ORDER.index(self)


_TIER_ORDER = [Tier.T7B, Tier.T14B, Tier.T34B, Tier.T70B]
TIERS: tuple[Tier, ...] = tuple(_TIER_ORDER)
LOCALES = ("ko", "en", "ja", "zh")
LOCAL_URL = "local"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
Name = Annotated[str, Field(pattern=_NAME)]
Locale = Literal["ko", "en", "ja", "zh"]
# What a model accepts in a chat: text, image_url parts, video_url parts, input_audio parts.
Modality = Literal["text", "image", "video", "audio"]
MODALITIES: tuple[str, ...] = ("text", "image", "video", "audio")
# Engines served by OpenAI-compatible servers (remote only); the others are this project's.
OPENAI_ENGINES = frozenset({Engine.LLM, Engine.VISION})
_HTTP_URL = TypeAdapter(AnyHttpUrl)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Strict):
    name: Name
    description: str = ""


class Node(_Strict):
    name: Name
    engine: Engine
    url: str
    models: tuple[Name, ...] = Field(min_length=1)
    region: Name
    kind: Literal["local", "cloud"] = "local"
    max_concurrency: int = Field(default=64, ge=1, le=100_000)
    weight: float = Field(default=1.0, gt=0, le=1000)
    api_key: str | None = None
    # Which engine serves it, for its load signals: auto detects the family from the
    # names its /metrics exposes; openai is a server without /metrics (never scraped).
    server: Literal["auto", "vllm", "sglang", "tgi", "llamacpp", "openai"] = "auto"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value == LOCAL_URL:
            return value
        try:
            _HTTP_URL.validate_python(value)
        except ValidationError:
            raise ValueError(f"not an http(s) URL or 'local': {value!r}") from None
        return value.rstrip("/")

    @property
    def in_process(self) -> bool:
        return self.url == LOCAL_URL


class ModelVersion(_Strict):
    version: Name
    served_as: str | None = None  # the model id the engine knows; defaults to the model's name
    active: bool = False
    description: str = ""


class Model(_Strict):
    name: Name
    engine: Engine = Engine.LLM
    aliases: tuple[Name, ...] = ()
    tier: Tier | None = None
    locales: dict[Locale, Name] = Field(default_factory=dict)
    versions: tuple[ModelVersion, ...] = ()
    description: str = ""
    modalities: tuple[Modality, ...] = ("text",)  # what its chat accepts (llm/vision models)

    @model_validator(mode="after")
    def _one_active(self) -> Model:
        if self.versions and sum(v.active for v in self.versions) != 1:
            raise ValueError(f"model {self.name!r}: exactly one version must be active")
        names = [v.version for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError(f"model {self.name!r}: duplicate version names")
        if self.engine is Engine.LLM and self.tier is None:
            raise ValueError(f"model {self.name!r}: an llm model needs a tier")
        if len(set(self.modalities)) != len(self.modalities) or "text" not in self.modalities:
            raise ValueError(f"model {self.name!r}: modalities must include text, once each")
        if self.engine is Engine.VISION and not {"image", "video"} & set(self.modalities):
            raise ValueError(
                f"model {self.name!r}: a vision model must declare image (or video) in modalities"
            )
        return self


class TierPolicy(_Strict):
    """Which model serves each tier in a zone, and the tiers the zone may use."""

    models: dict[Tier, Name] = Field(default_factory=dict)
    min: Tier = Tier.T7B
    max: Tier = Tier.T70B

    @model_validator(mode="after")
    def _bounds(self) -> TierPolicy:
        if self.min.rank > self.max.rank:
            raise ValueError("tiers.min is above tiers.max")
        return self


class ZoneSafety(_Strict):
    """A zone's safety policy for text on its way to and from the LLM.

    pii: "mask" replaces phones, RRNs, emails, cards, accounts, addresses, names and IPs
    with placeholders ([PHONE_1]) before a prompt leaves for the LLM; "allow" sends them.
    restore_pii puts the originals back into the answer. firewall (prompt injection and
    jailbreaks) and moderation (toxicity, self-harm): "block" refuses with a 4xx,
    "flag" lets the request through and records it, "off" skips the check.
    """

    pii: Literal["mask", "allow"] = "mask"
    restore_pii: bool = True
    firewall: Literal["block", "flag", "off"] = "block"
    moderation: Literal["block", "flag", "off"] = "block"


class RoutingPolicy(_Strict):
    """How LLM requests choose among the healthy nodes of one preference group.

    cache_aware sends a conversation back to the node that holds its KV cache (consistent
    hashing of its key, skipping a node whose load is above load_factor × the mean);
    least_loaded and round_robin ignore conversations.
    """

    policy: Literal["cache_aware", "least_loaded", "round_robin"] = "cache_aware"
    load_factor: float = Field(default=2.0, ge=1.0, le=10.0)  # 1 + ε of bounded loads
    virtual_nodes: int = Field(default=100, ge=1, le=10_000)  # ring points per unit weight


class Zone(_Strict):
    description: str = ""
    safety: ZoneSafety = ZoneSafety()
    routing: RoutingPolicy | None = None  # None: the topology's `routing`
    engines: dict[Engine, Name] = Field(default_factory=dict)
    allowed_models: tuple[Name, ...] = ()
    default_locale: Locale = "en"
    default_strategy: Name | None = None
    tiers: TierPolicy = TierPolicy()


class Topology(_Strict):
    regions: tuple[Region, ...] = Field(min_length=1)
    nodes: tuple[Node, ...] = ()
    models: tuple[Model, ...] = ()
    zones: dict[Name, Zone] = Field(default_factory=dict)
    default_zone: Name | None = None
    routing: RoutingPolicy = RoutingPolicy()  # every zone's, unless it sets its own

    @model_validator(mode="after")
    def _references(self) -> Topology:
        _check_unique("regions", [r.name for r in self.regions])
        _check_unique("nodes", [n.name for n in self.nodes])
        names = [m.name for m in self.models]
        aliases = [a for m in self.models for a in m.aliases]
        _check_unique("models (names and aliases)", names + aliases)
        _check_nodes(self)
        _check_models(self)
        for zone_id, zone in self.zones.items():
            _check_zone(self, zone_id, zone)
        if self.default_zone is not None and self.default_zone not in self.zones:
            raise ValueError(f"default_zone: unknown zone {self.default_zone!r}")
        return self

    def model(self, name: str) -> Model:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def served(self, model: str) -> bool:
        return any(model in n.models for n in self.nodes)


def _check_unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what}: duplicate name {name!r}")
        seen.add(name)


def _check_nodes(topo: Topology) -> None:
    regions = {r.name for r in topo.regions}
    models = {m.name: m for m in topo.models}
    for node in topo.nodes:
        where = f"nodes.{node.name}"
        if node.region not in regions:
            raise ValueError(f"{where}.region: unknown region {node.region!r}")
        for name in node.models:
            if name not in models:
                raise ValueError(f"{where}.models: unknown model {name!r}")
            if models[name].engine is not node.engine:
                raise ValueError(
                    f"{where}.models: {name!r} is a {models[name].engine} model,"
                    f" the node runs {node.engine}"
                )
        if node.in_process and node.engine in OPENAI_ENGINES:
            raise ValueError(
                f"{where}.url: {node.engine} nodes are remote (vLLM / OpenAI-compatible)"
            )
        if not node.in_process and node.engine is Engine.FACE:
            raise ValueError(f"{where}.url: face nodes run in-process (url: local)")


def _check_models(topo: Topology) -> None:
    known = {m.name: m for m in topo.models}
    for model in topo.models:
        for locale, target in model.locales.items():
            where = f"models.{model.name}.locales.{locale}"
            if target not in known:
                raise ValueError(f"{where}: unknown model {target!r}")
            if known[target].engine is not model.engine:
                raise ValueError(f"{where}: {target!r} runs on another engine")
            if not topo.served(target):
                raise ValueError(f"{where}: no node serves {target!r}")


def _check_zone(topo: Topology, zone_id: str, zone: Zone) -> None:
    known = {m.name: m for m in topo.models}

    def need(where: str, name: str, engine: Engine | None = None) -> None:
        if name not in known:
            raise ValueError(f"zones.{zone_id}.{where}: unknown model {name!r}")
        if engine is not None and known[name].engine is not engine:
            raise ValueError(f"zones.{zone_id}.{where}: {name!r} is not a {engine} model")
        if not topo.served(name):
            raise ValueError(f"zones.{zone_id}.{where}: no node serves model {name!r}")

    for engine, name in zone.engines.items():
        need(f"engines.{engine}", name, engine)
    for name in zone.allowed_models:
        need("allowed_models", name)
    for tier, name in zone.tiers.models.items():
        need(f"tiers.models.{tier}", name, Engine.LLM)


class TopologyError(ValueError):
    """The topology file is missing, unreadable or invalid; the message names the key."""


def parse_topology(data: Mapping[str, Any], source: str = "<topology>") -> Topology:
    """Validate a topology mapping; raise TopologyError naming the offending key."""
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(_describe(exc, source, data)) from None


def load_topology(path: str | Path, env: Mapping[str, str] | None = None) -> Topology:
    """Read, validate and apply `MEGACITY_<ENGINE>_MODEL` overrides to a YAML topology file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read topology file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TopologyError(f"{path}: the topology file is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise TopologyError(f"{path}: the topology must be a mapping at the top level")
    topo = parse_topology(raw, str(path))
    return apply_model_overrides(topo, os.environ if env is None else env)


def apply_model_overrides(topo: Topology, env: Mapping[str, str]) -> Topology:
    """Set options.model of in-process nodes from MEGACITY_<ENGINE>_MODEL variables."""
    nodes = []
    for node in topo.nodes:
        override = env.get(f"MEGACITY_{node.engine.upper()}_MODEL")
        if node.in_process and override:
            node = node.model_copy(update={"options": {**node.options, "model": override}})
        nodes.append(node)
    return topo.model_copy(update={"nodes": tuple(nodes)})


def _describe(exc: ValidationError, source: str, data: Mapping[str, Any]) -> str:
    lines = [f"{source}: invalid topology"]
    for err in exc.errors(include_url=False):
        loc = ".".join(_named(data, err["loc"]))
        msg = re.sub(r"^Value error, ", "", err["msg"])
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {loc}: {msg}" if loc else f"  {msg}")
    return "\n".join(lines)


def _named(data: Mapping[str, Any], loc: tuple[int | str, ...]) -> list[str]:
    """Replace list indexes in an error location by the item's name, when it has one."""
    parts: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
            name = node.get("name") if isinstance(node, dict) else None
            parts.append(str(name) if isinstance(name, str) and name else str(part))
            continue
        parts.append(str(part))
        node = node.get(part) if isinstance(node, dict) else None
    return parts

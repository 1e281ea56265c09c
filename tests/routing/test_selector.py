"""Model selection with the example topology: zone policy, tiers, locales, aliases."""

from __future__ import annotations

from pathlib import Path

import pytest

from megacity.config.topology import Tier, load_topology
from megacity.errors import BadRequest, Forbidden, NotFound
from megacity.routing.context import RequestContext
from megacity.routing.registry import ModelRegistry
from megacity.routing.selector import AUTO, ModelSelector, PromptInfo

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"

SHORT = "What is the capital of France?"
SHORT_KO = "광합성이 뭐야?"
EXPLAIN = "Explain how photosynthesis works"
ESSAY = "이 논술 답안을 첨삭해 주세요: 인공지능은 교육을 바꿀 것이다."
PROOF = "Prove step by step that the square root of two is irrational"


@pytest.fixture
def registry() -> ModelRegistry:
    return ModelRegistry(load_topology(EXAMPLE, env={}))


@pytest.fixture
def selector(registry: ModelRegistry) -> ModelSelector:
    return ModelSelector(load_topology(EXAMPLE, env={}), registry)


def ctx(
    zone: str | None = None, locale: str | None = None, region: str | None = None
) -> RequestContext:
    return RequestContext(request_id="t", zone=zone, locale=locale, region=region)


AUTO_TABLE: list[tuple[str, str | None, PromptInfo, Tier, str]] = [
    # zone, locale, prompt → tier, model
    ("mpcstudy", None, PromptInfo(SHORT_KO), Tier.T7B, "llama-3.1-8b"),
    ("mpcstudy", "en", PromptInfo(SHORT), Tier.T7B, "llama-3.1-8b"),
    ("mpcstudy", None, PromptInfo(EXPLAIN), Tier.T14B, "qwen2.5-14b"),
    ("mpcstudy", None, PromptInfo(PROOF), Tier.T14B, "qwen2.5-14b"),  # 34b clamped to max 14b
    ("mpcstudy", None, PromptInfo(SHORT, multimodal_parts=1), Tier.T14B, "qwen2.5-14b"),
    ("univprep", None, PromptInfo(ESSAY), Tier.T34B, "qwen2.5-32b"),
    ("univprep", None, PromptInfo(SHORT_KO), Tier.T14B, "seoul-medium-kr"),  # min 14b
    ("univprep", None, PromptInfo(SHORT, multimodal_parts=2), Tier.T70B, "qwen2.5-72b"),
    ("skillprep", None, PromptInfo(SHORT), Tier.T7B, "llama-3.1-8b"),
    ("skillprep", None, PromptInfo("Please do a code review of this"), Tier.T14B, "qwen2.5-14b"),
    ("skillprep", None, PromptInfo(PROOF), Tier.T34B, "qwen2.5-32b"),
    ("ktube", None, PromptInfo(SHORT_KO), Tier.T7B, "llama-3.1-8b"),
    ("ktube", None, PromptInfo(ESSAY), Tier.T14B, "seoul-medium-kr"),  # max 14b
    ("dreamseed", None, PromptInfo(SHORT), Tier.T34B, "qwen2.5-32b"),  # min 34b
    ("dreamseed", None, PromptInfo(SHORT, multimodal_parts=1), Tier.T70B, "qwen2.5-72b"),
    ("dreamseed", None, PromptInfo(SHORT, turns=12), Tier.T34B, "qwen2.5-32b"),
]


@pytest.mark.parametrize(
    ("zone", "locale", "prompt", "tier", "model"),
    AUTO_TABLE,
    ids=[f"{z}-{m}-{p.text[:12]}" for z, _, p, _, m in AUTO_TABLE],
)
def test_auto_follows_the_zone_tier_policy(
    selector: ModelSelector,
    zone: str,
    locale: str | None,
    prompt: PromptInfo,
    tier: Tier,
    model: str,
) -> None:
    decision = selector.select(AUTO, ctx(zone, locale), prompt)
    assert decision.auto is True
    assert decision.zone == zone
    assert decision.tier is tier
    assert decision.model.name == model
    assert decision.classification is not None
    assert decision.classification.tier is tier


def test_clamped_decision_explains_the_clamp(selector: ModelSelector) -> None:
    decision = selector.select(AUTO, ctx("mpcstudy"), PromptInfo(PROOF))
    assert decision.classification is not None
    assert decision.classification.features["question_type"] == "reasoning"
    assert "zone policy clamps to 7b–14b" in decision.classification.reasons


def test_auto_uses_the_active_version(selector: ModelSelector, registry: ModelRegistry) -> None:
    first = selector.select(AUTO, ctx("univprep", "ko"), PromptInfo(SHORT_KO))
    assert first.model.served_as == "seoul-medium-kr-v1"
    registry.activate("seoul-medium-kr", "v2")
    second = selector.select(AUTO, ctx("univprep", "ko"), PromptInfo(SHORT_KO))
    assert second.model.served_as == "seoul-medium-kr-v2"


@pytest.mark.parametrize(
    ("locale", "model", "decided_locale"),
    [
        (None, "seoul-medium-kr", "ko"),  # univprep's default locale
        ("ko", "seoul-medium-kr", "ko"),
        ("en", "qwen2.5-14b", "en"),
        ("ja", "qwen2.5-14b", "ja"),
        ("zh", "qwen2.5-14b", "zh"),
        ("ko-KR", "seoul-medium-kr", "ko"),
        ("en-US", "qwen2.5-14b", "en"),
        ("en_GB", "qwen2.5-14b", "en"),
        ("EN", "qwen2.5-14b", "en"),
        ("zh-Hant-TW", "qwen2.5-14b", "zh"),
    ],
)
def test_locale_variant(
    selector: ModelSelector, locale: str | None, model: str, decided_locale: str
) -> None:
    decision = selector.select(AUTO, ctx("univprep", locale), PromptInfo(EXPLAIN))
    assert decision.tier is Tier.T14B
    assert decision.model.name == model
    assert decision.locale == decided_locale


@pytest.mark.parametrize("locale", ["fr", "de-DE", "korean", "x"])
def test_unsupported_locale(selector: ModelSelector, locale: str) -> None:
    with pytest.raises(BadRequest) as info:
        selector.select(AUTO, ctx("univprep", locale), PromptInfo(SHORT))
    assert info.value.code == "unsupported_locale"
    assert info.value.param == "X-Locale"


@pytest.mark.parametrize(
    ("zone", "requested", "model", "tier"),
    [
        ("univprep", "kr-essay-tutor", "seoul-medium-kr", Tier.T14B),
        ("univprep", "qwen-72b", "qwen2.5-72b", Tier.T70B),
        ("mpcstudy", "mpc-light", "llama-3.1-8b", Tier.T7B),
        ("mpcstudy", "qwen2.5-14b", "qwen2.5-14b", Tier.T14B),
        ("skillprep", "skill-tutor", "qwen2.5-32b", Tier.T34B),
    ],
)
def test_explicit_name_or_alias(
    selector: ModelSelector, zone: str, requested: str, model: str, tier: Tier
) -> None:
    decision = selector.select(requested, ctx(zone), PromptInfo(ESSAY))
    assert decision.auto is False
    assert decision.classification is None
    assert decision.model.name == model
    assert decision.tier is tier


@pytest.mark.parametrize(
    ("zone", "requested"),
    [
        ("mpcstudy", "qwen2.5-72b"),
        ("mpcstudy", "qwen-32b"),  # by alias
        ("dreamseed", "llama-3.1-8b"),
        ("ktube", "qwen2.5-72b"),
    ],
)
def test_model_not_allowed_in_zone(selector: ModelSelector, zone: str, requested: str) -> None:
    with pytest.raises(Forbidden) as info:
        selector.select(requested, ctx(zone), PromptInfo(SHORT))
    assert info.value.code == "model_not_allowed"
    assert info.value.status == 403
    assert zone in info.value.message


def test_unknown_model_is_not_found(selector: ModelSelector) -> None:
    with pytest.raises(NotFound) as info:
        selector.select("gpt-4o", ctx("univprep"), PromptInfo(SHORT))
    assert info.value.code == "model_not_found"


def test_unknown_zone(selector: ModelSelector) -> None:
    with pytest.raises(BadRequest) as info:
        selector.select(AUTO, ctx("nowhere"), PromptInfo(SHORT))
    assert info.value.code == "unknown_zone"
    assert info.value.param == "X-Zone"


def test_missing_zone_uses_the_default_zone(selector: ModelSelector) -> None:
    decision = selector.select(AUTO, ctx(None), PromptInfo(SHORT_KO))
    assert decision.zone == "univprep"
    assert decision.locale == "ko"
    assert decision.model.name == "seoul-medium-kr"


def test_missing_zone_without_default_zone(registry: ModelRegistry) -> None:
    topo = load_topology(EXAMPLE, env={}).model_copy(update={"default_zone": None})
    with pytest.raises(BadRequest) as info:
        ModelSelector(topo, registry).select(AUTO, ctx(None), PromptInfo(SHORT))
    assert info.value.code == "zone_required"


@pytest.mark.parametrize("region", ["kr-seoul", "jp-tokyo", "us-east"])
def test_known_region_is_accepted(selector: ModelSelector, region: str) -> None:
    assert (
        selector.select(AUTO, ctx("mpcstudy", region=region), PromptInfo(SHORT)).zone == "mpcstudy"
    )


def test_unknown_region(selector: ModelSelector) -> None:
    with pytest.raises(BadRequest) as info:
        selector.select(AUTO, ctx("mpcstudy", region="eu-west"), PromptInfo(SHORT))
    assert info.value.code == "unknown_region"
    assert info.value.param == "X-Region"


@pytest.mark.parametrize(
    ("zone", "floor", "tier", "model"),
    [
        ("univprep", Tier.T34B, Tier.T34B, "qwen2.5-32b"),
        ("univprep", Tier.T7B, Tier.T14B, "seoul-medium-kr"),  # below the zone min: no effect
        ("mpcstudy", Tier.T14B, Tier.T14B, "qwen2.5-14b"),
        ("mpcstudy", Tier.T34B, Tier.T14B, "qwen2.5-14b"),  # capped at the zone max
        ("ktube", Tier.T70B, Tier.T14B, "seoul-medium-kr"),
        ("skillprep", Tier.T70B, Tier.T70B, "qwen2.5-72b"),
        ("dreamseed", Tier.T14B, Tier.T34B, "qwen2.5-32b"),
    ],
)
def test_tier_floor(
    selector: ModelSelector, zone: str, floor: Tier, tier: Tier, model: str
) -> None:
    decision = selector.select(AUTO, ctx(zone, "ko"), PromptInfo(SHORT), tier_floor=floor)
    assert decision.tier is tier
    assert decision.model.name == model


@pytest.mark.parametrize("requested", [None, "", AUTO, "whisper-1", "whisper-large-v3"])
def test_speech_model_from_zone_or_alias(selector: ModelSelector, requested: str | None) -> None:
    from megacity.config.topology import Engine

    decision = selector.select_engine(Engine.SPEECH, requested, ctx("ktube"))
    assert decision.model.name == "whisper-large-v3"
    assert (decision.zone, decision.locale, decision.tier) == ("ktube", "ko", None)


@pytest.mark.parametrize(
    ("zone", "requested", "error", "code"),
    [
        ("univprep", None, BadRequest, "no_model_for_zone"),  # no speech engine in the zone
        ("univprep", "whisper-1", Forbidden, "model_not_allowed"),
        ("ktube", "seoul-medium-kr", BadRequest, "wrong_engine"),
        ("ktube", "whisper-9", NotFound, "model_not_found"),
    ],
)
def test_speech_model_errors(
    selector: ModelSelector, zone: str, requested: str | None, error: type, code: str
) -> None:
    from megacity.config.topology import Engine

    with pytest.raises(error) as info:
        selector.select_engine(Engine.SPEECH, requested, ctx(zone))
    assert info.value.code == code

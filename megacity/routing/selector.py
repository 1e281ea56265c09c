"""Model selection: zone policy + tier + locale + active version → one concrete model."""

from __future__ import annotations

from dataclasses import dataclass

from megacity.config.topology import LOCALES, TIERS, Engine, Tier, Topology, Zone
from megacity.errors import BadRequest, Forbidden
from megacity.routing import modality
from megacity.routing.classifier import Classification, classify
from megacity.routing.context import RequestContext
from megacity.routing.registry import ModelRegistry, ResolvedModel

AUTO = "auto"


@dataclass(frozen=True, slots=True)
class PromptInfo:
    """What the classifier reads of a request: its text, multimodal parts and turns."""

    text: str
    multimodal_parts: int = 0
    turns: int = 1
    modalities: frozenset[str] = frozenset()  # what its non-text parts need (image, video …)


@dataclass(frozen=True, slots=True)
class Decision:
    """The model decision for one request, reported back in the X-MegaCity-* headers."""

    zone: str
    locale: str
    model: ResolvedModel
    tier: Tier | None
    auto: bool
    classification: Classification | None = None


class ModelSelector:
    """Applies a zone's policy to a requested model name (concrete, alias or `auto`)."""

    def __init__(self, topology: Topology, registry: ModelRegistry) -> None:
        self.zones = topology.zones
        self._default_zone = topology.default_zone
        self._regions = {r.name for r in topology.regions}
        self._registry = registry

    def zone(self, ctx: RequestContext) -> tuple[str, Zone]:
        """The request's zone (X-Zone, else the default zone); 400 when unknown or missing."""
        zone_id = ctx.zone or self._default_zone
        if zone_id is None:
            raise BadRequest("X-Zone header is required", code="zone_required", param="X-Zone")
        zone = self.zones.get(zone_id)
        if zone is None:
            raise BadRequest(f"unknown zone {zone_id!r}", code="unknown_zone", param="X-Zone")
        return zone_id, zone

    def locale(self, ctx: RequestContext, zone: Zone) -> str:
        locale = (ctx.locale or zone.default_locale).lower()
        if "-" in locale or "_" in locale:
            locale = locale.replace("_", "-").split("-", 1)[0]  # ko-KR → ko
        if locale not in LOCALES:
            raise BadRequest(
                f"unsupported locale {ctx.locale!r} (use one of {', '.join(LOCALES)})",
                code="unsupported_locale",
                param="X-Locale",
            )
        return locale

    def select(
        self,
        requested: str,
        ctx: RequestContext,
        prompt: PromptInfo,
        *,
        tier_floor: Tier | None = None,
    ) -> Decision:
        """Decide the model; `auto` classifies the prompt and follows the zone's tier policy."""
        zone_id, zone = self.zone(ctx)
        locale = self.locale(ctx, zone)
        if ctx.region is not None and ctx.region not in self._regions:
            raise BadRequest(
                f"unknown region {ctx.region!r}", code="unknown_region", param="X-Region"
            )
        if requested != AUTO:
            name = self._registry.canonical(requested)
            if zone.allowed_models and name not in zone.allowed_models:
                raise Forbidden(
                    f"model {name!r} is not allowed in zone {zone_id!r}",
                    code="model_not_allowed",
                    param="model",
                )
            model = self._registry.resolve(name)
            if prompt.modalities:
                modality.check_named(model, prompt.modalities, zone)
            return Decision(zone_id, locale, model, model.tier, auto=False)
        floor = zone.tiers.min
        if tier_floor is not None and tier_floor.rank > floor.rank:
            floor = TIERS[min(tier_floor.rank, zone.tiers.max.rank)]
        result = classify(
            prompt.text,
            multimodal_parts=prompt.multimodal_parts,
            turns=prompt.turns,
            zone_min=floor,
            zone_max=zone.tiers.max,
        )
        name = self._model_for_tier(zone_id, zone, result.tier)
        model = self._registry.resolve(self._registry.localized(name, locale))
        if prompt.modalities and modality.missing(model.modalities, prompt.modalities):
            model = modality.pick(
                self._registry, zone_id, zone, result.tier, locale, prompt.modalities
            )
        tier = model.tier if model.engine is Engine.VISION and model.tier else result.tier
        return Decision(zone_id, locale, model, tier, auto=True, classification=result)

    def for_tier(self, ctx: RequestContext, tier: Tier) -> Decision:
        """The zone's model for `tier`, clamped to the zone's bounds (pipelines' LLM steps)."""
        zone_id, zone = self.zone(ctx)
        locale = self.locale(ctx, zone)
        rank = min(max(tier.rank, zone.tiers.min.rank), zone.tiers.max.rank)
        name = self._model_for_tier(zone_id, zone, TIERS[rank])
        model = self._registry.resolve(self._registry.localized(name, locale))
        return Decision(zone_id, locale, model, TIERS[rank], auto=True)

    def select_engine(self, engine: Engine, requested: str | None, ctx: RequestContext) -> Decision:
        """The model for a non-LLM request: the named one (checked), else the zone's default."""
        zone_id, zone = self.zone(ctx)
        locale = self.locale(ctx, zone)
        if ctx.region is not None and ctx.region not in self._regions:
            raise BadRequest(
                f"unknown region {ctx.region!r}", code="unknown_region", param="X-Region"
            )
        if requested in (None, "", AUTO):
            name = zone.engines.get(engine)
            if name is None:
                raise BadRequest(
                    f"zone {zone_id!r} has no {engine} model configured",
                    code="no_model_for_zone",
                    param="model",
                )
        else:
            name = self._registry.canonical(requested)
            if self._registry.model(name).engine is not engine:
                raise BadRequest(
                    f"model {requested!r} is not a {engine} model",
                    code="wrong_engine",
                    param="model",
                )
            if zone.allowed_models and name not in zone.allowed_models:
                raise Forbidden(
                    f"model {name!r} is not allowed in zone {zone_id!r}",
                    code="model_not_allowed",
                    param="model",
                )
        return Decision(zone_id, locale, self._registry.resolve(name), None, auto=False)

    def _model_for_tier(self, zone_id: str, zone: Zone, tier: Tier) -> str:
        """The zone's model for a tier: exact, else the nearest smaller, else larger, else default."""
        by_tier = zone.tiers.models
        if tier in by_tier:
            return by_tier[tier]
        smaller = [t for t in reversed(TIERS[: tier.rank]) if t in by_tier]
        larger = [t for t in TIERS[tier.rank + 1 :] if t in by_tier]
        for candidate in smaller + larger:
            return by_tier[candidate]
        default = zone.engines.get(Engine.LLM)
        if default is None:
            raise BadRequest(
                f"zone {zone_id!r} has no LLM model configured", code="no_model_for_zone"
            )
        return default

"""Which models may take a chat's non-text parts: images, video, audio.

Models declare what they accept in the topology (`modalities`, default ``[text]``). A
chat with ``image_url`` / ``video_url`` / ``input_audio`` parts goes only to a model that
covers them; a video is covered by a video model, or by an image model through keyframes
(routing/chat_media.py makes them). For ``auto``, the zone's model for the classified
tier is kept when it covers the parts, else the next tier model down (then up) within
the zone's bounds that does, else the zone's `engines.vision` model. A zone with none
answers 400 ``no_vision_model`` naming the zone — never a text-only model's own error.
A named model that cannot take the parts is 400 ``unsupported_modality``.
"""

from __future__ import annotations

from collections.abc import Iterable

from megacity.config.topology import TIERS, Engine, Tier, Zone
from megacity.errors import BadRequest
from megacity.routing.registry import ModelRegistry, ResolvedModel

# Content part type → the modality it needs (OpenAI chat and Responses names, vLLM's).
PART_MODALITIES: dict[str, str] = {
    "image_url": "image",
    "input_image": "image",
    "video_url": "video",
    "input_audio": "audio",
}
TEXT_PARTS = frozenset({"text", "input_text"})


def part_modalities(types: Iterable[str]) -> frozenset[str]:
    """The modalities that content parts of these types need; 400 for an unknown type."""
    needed: set[str] = set()
    for kind in types:
        if kind in TEXT_PARTS:
            continue
        modality = PART_MODALITIES.get(kind)
        if modality is None:
            known = ", ".join(["text", *PART_MODALITIES])
            raise BadRequest(
                f"unsupported content part type {kind[:40]!r} (use one of {known})",
                code="unsupported_content_part",
                param="messages",
            )
        needed.add(modality)
    return frozenset(needed)


def missing(accepts: Iterable[str], needed: frozenset[str]) -> frozenset[str]:
    """What of `needed` a model accepting `accepts` cannot take (video: video, or images)."""
    have = set(accepts)
    if "image" in have:
        have.add("video")  # as keyframes
    return needed - have


def check_named(model: ResolvedModel, needed: frozenset[str], zone: Zone) -> None:
    """400 when a model the client named cannot take the parts (says what would)."""
    lacking = missing(model.modalities, needed)
    if not lacking:
        return
    vision = zone.engines.get(Engine.VISION)
    hint = f"; use model `auto` or {vision!r}" if vision else ""
    raise BadRequest(
        f"model {model.name!r} does not accept {', '.join(sorted(lacking))} parts"
        f" (it accepts {', '.join(model.modalities)}){hint}",
        code="unsupported_modality",
        param="messages",
    )


def pick(
    registry: ModelRegistry,
    zone_id: str,
    zone: Zone,
    tier: Tier,
    locale: str,
    needed: frozenset[str],
) -> ResolvedModel:
    """The model for an `auto` chat with non-text parts (see the module docstring)."""
    by_tier = zone.tiers.models
    low, high = zone.tiers.min.rank, zone.tiers.max.rank
    order = [t for t in reversed(TIERS[low : tier.rank + 1])] + list(
        TIERS[tier.rank + 1 : high + 1]
    )
    for candidate in order:
        name = by_tier.get(candidate)
        if name is None:
            continue
        model = registry.resolve(registry.localized(name, locale))
        if not missing(model.modalities, needed):
            return model
    vision = zone.engines.get(Engine.VISION)
    if vision is not None:
        model = registry.resolve(registry.localized(vision, locale))
        if not missing(model.modalities, needed):
            return model
    what = ", ".join(sorted(needed))
    raise BadRequest(
        f"zone {zone_id!r} has no model that accepts {what} parts; configure a vision model"
        " for it (`engines.vision` in the topology) or send text only",
        code="no_vision_model",
        param="messages",
        zone=zone_id,
    )


__all__ = ["PART_MODALITIES", "TEXT_PARTS", "check_named", "missing", "part_modalities", "pick"]

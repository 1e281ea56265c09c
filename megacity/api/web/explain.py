"""The routing explainer: what the router would do with a prompt, step by step, without sending it.

The same selector, strategy rule and balancer the chat route uses (`LLMGateway`,
`ModelSelector`, `Balancer.pick`), so the tier and model shown are the ones the API picks
for the same prompt, zone, locale and region; the node is the one it would pick now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from megacity.api.services import Services
from megacity.errors import MegaCityError
from megacity.routing.balancer import NodeState
from megacity.routing.context import RequestContext
from megacity.routing.selector import AUTO, PromptInfo

MAX_PROMPT_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class Question:
    """What the explainer is asked: a prompt and the headers a request would carry."""

    prompt: str
    zone: str | None = None
    locale: str | None = None
    region: str | None = None
    strategy: str | None = None
    model: str = AUTO


def explain(services: Services, q: Question) -> dict[str, Any]:
    """The decision for `q` as JSON-ready data; {"error": …} when the API would refuse it."""
    ctx = RequestContext(
        "explain", zone=q.zone, locale=q.locale, region=q.region, strategy=q.strategy
    )
    try:
        decision = services.selector.select(q.model, ctx, PromptInfo(text=q.prompt))
        strategy = services.llm.strategy_for(ctx, decision)
    except MegaCityError as exc:
        return {"error": {"message": exc.message, "code": exc.code, "status": exc.status}}
    model = decision.model
    region = q.region or services.settings.region or services.topology.regions[0].name
    chosen = services.balancer.pick(model.name, region, preview=True)
    groups = services.balancer.candidates(model.name, region)
    c = decision.classification
    return {
        "zone": decision.zone,
        "locale": decision.locale,
        "region": region,
        "tier": decision.tier.value if decision.tier else None,
        "auto": decision.auto,
        "model": {
            "name": model.name,
            "version": model.version,
            "served_as": model.served_as,
            "tier": model.tier.value if model.tier else None,
        },
        "classification": (
            {"tier": c.tier.value, "features": dict(c.features), "reasons": list(c.reasons)}
            if c is not None
            else None
        ),
        "strategy": strategy,
        "chosen": chosen.name if chosen is not None else None,
        "candidates": [
            {
                "rank": rank,
                "label": _label(group[0]),
                "nodes": [_candidate(s, chosen) for s in group],
            }
            for rank, group in enumerate(groups, 1)
        ],
    }


def _label(first: NodeState) -> str:
    node = first.node
    return "cloud" if node.kind == "cloud" else node.region


def _candidate(state: NodeState, chosen: NodeState | None) -> dict[str, Any]:
    alive = state.alive()
    return {
        "name": state.name,
        "region": state.node.region,
        "kind": state.node.kind,
        "load": state.load,
        "in_flight": state.in_flight,
        "waiting": state.reported_waiting,
        "can_take": state.can_take(),
        "status": "ok" if alive else "down",
        "breaker": state.breaker.state.name.lower(),
        "chosen": state is chosen,
    }

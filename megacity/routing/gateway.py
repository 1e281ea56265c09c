"""The LLM route: decide the model (and prompt strategy), then dispatch to a node."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from megacity.config.topology import Tier
from megacity.prompts.library import StrategyLibrary
from megacity.routing.chat_media import ChatMedia
from megacity.routing.context import RequestContext
from megacity.routing.conversation import route_hint
from megacity.routing.dispatch import Admission, Answer, Dispatcher
from megacity.routing.modality import part_modalities
from megacity.routing.selector import Decision, ModelSelector, PromptInfo

NO_STRATEGY = "none"


def chat_prompt(messages: Sequence[dict[str, Any]]) -> PromptInfo:
    """Classifier input of a chat: the last user turn's text, multimodal parts, turn count,
    and the modalities the non-text parts of any message need."""
    text = ""
    parts = 0
    turns = 0
    kinds: set[str] = set()
    for message in messages:
        content = message.get("content")
        user = message.get("role") == "user"
        turns += user
        if isinstance(content, str):
            text = content if user else text
        elif isinstance(content, list):
            other = [p.get("type") for p in content if isinstance(p, dict)]
            other = [k for k in other if k != "text"]
            kinds.update(str(k) for k in other)
            if user:
                texts = [p.get("text") or "" for p in content if isinstance(p, dict)]
                text = "\n".join(t for t in texts if isinstance(t, str))
                parts += len(other)
    needed = part_modalities(kinds) if kinds else frozenset()
    return PromptInfo(text=text, multimodal_parts=parts, turns=max(turns, 1), modalities=needed)


def completion_prompt(prompt: str | list[str]) -> PromptInfo:
    text = prompt if isinstance(prompt, str) else "\n".join(prompt)
    return PromptInfo(text=text)


class LLMGateway:
    """Chat and completion requests: zone/tier/locale model choice, strategy, node, failover."""

    def __init__(
        self,
        selector: ModelSelector,
        strategies: StrategyLibrary,
        dispatcher: Dispatcher,
        media: ChatMedia | None = None,
    ) -> None:
        self._selector = selector
        self._strategies = strategies
        self._dispatcher = dispatcher
        self._media = media  # image/video/audio parts; None: sent as they came

    async def chat(
        self,
        ctx: RequestContext,
        payload: dict[str, Any],
        started: float,
        *,
        tier_floor: Tier | None = None,
    ) -> Answer:
        """Route a chat completion; `payload` is the client's JSON (extra fields pass through).

        Non-text parts are fetched, checked and inlined here, for the chosen model."""
        messages: list[dict[str, Any]] = payload["messages"]
        prompt = chat_prompt(messages)
        decision = self._selector.select(payload["model"], ctx, prompt, tier_floor=tier_floor)
        if prompt.modalities and self._media is not None:
            await self._media.prepare(payload, decision.model)
            messages = payload["messages"]
        strategy = self.strategy_for(ctx, decision)
        if strategy is not None and not any(m.get("role") == "system" for m in messages):
            system = self._strategies.get(strategy).template(decision.locale).system
            payload["messages"] = [{"role": "system", "content": system.strip()}, *messages]
        return await self._send(ctx, decision, payload, "/v1/chat/completions", started)

    async def chat_as(
        self, ctx: RequestContext, decision: Decision, payload: dict[str, Any], started: float
    ) -> Answer:
        """A chat for a model the caller decided (a pipeline's step), sent as it is: its
        media parts are the pipeline's own data URLs, its system prompt is its own."""
        return await self._send(ctx, decision, payload, "/v1/chat/completions", started)

    async def complete(
        self, ctx: RequestContext, payload: dict[str, Any], started: float
    ) -> Answer:
        """Route a legacy text completion."""
        decision = self._selector.select(
            payload["model"], ctx, completion_prompt(payload["prompt"])
        )
        return await self._send(ctx, decision, payload, "/v1/completions", started)

    def strategy_for(self, ctx: RequestContext, decision: Decision) -> str | None:
        """X-Prompt-Strategy, else the zone's default; `none` turns strategies off."""
        if ctx.strategy == NO_STRATEGY:
            return None
        if ctx.strategy is not None:
            self._strategies.get(ctx.strategy)  # 404 for an unknown strategy
            return ctx.strategy
        default = self._selector.zones[decision.zone].default_strategy
        return default if default in self._strategies else None

    async def _send(
        self,
        ctx: RequestContext,
        decision: Decision,
        payload: dict[str, Any],
        path: str,
        started: float,
    ) -> Answer:
        payload["model"] = decision.model.served_as
        stream = bool(payload.get("stream"))
        body = orjson.dumps(payload)
        hint = route_hint(
            payload, decision.model.name, decision.zone, ctx.session_id, self._dispatcher.ledger
        )
        admission = Admission(path, body, stream, ctx.request_id, ctx.region, started, hint)
        return await self._dispatcher.send(decision, admission)

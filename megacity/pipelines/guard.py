"""The LLM's safety pipeline around one request.

    abuse (repeated prompts) → prompt firewall → input moderation → LLM-token budget
    → PII masked into placeholders → the LLM → placeholders restored → output moderation
    → the budget settled with the usage the engine reports

Each step follows the zone's policy (`ZoneSafety`): block with a 4xx naming the reason,
flag (let through, log and count), or off. Nothing here logs the user's text: a log
line carries the keyed hash of the user, the rule ids and the categories.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from megacity.config.limits import LimitsPolicy
from megacity.config.topology import ZoneSafety
from megacity.errors import ContentRejected, TooManyRequests
from megacity.observability.metrics import Metrics
from megacity.pipelines.guard_stream import content_slot, guarded_stream, moderated_text
from megacity.routing.classifier import estimate_tokens
from megacity.routing.dispatch import Answer
from megacity.safety.abuse import AbuseDetector, Block
from megacity.safety.firewall import PromptFirewall
from megacity.safety.moderation import HELP_RESOURCES, Category, ModerationResult, Moderator
from megacity.safety.pii import PIIMasker
from megacity.safety.pii import restore as restore_pii
from megacity.safety.ratelimit import Bucket, Rate, RateLimiter

log = logging.getLogger("megacity.safety")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the keyed hash of the user id (never the id), the zone and its policy.

    `named` is False for a caller acting for people it does not name (a service key
    without X-User-Id): it has the service token budget and is never blocked for bursts
    or firewall hits (api/limits.py says why).
    """

    user: str
    zone: str
    policy: ZoneSafety
    locale: str = "en"
    named: bool = True


@dataclass(slots=True)
class Guarded:
    """What a guarded request carries from before the LLM call to after it."""

    caller: Caller
    mapping: dict[str, str] = field(default_factory=dict)  # placeholder → original
    charged: float = 0.0  # LLM tokens taken from the budget up front
    buckets: tuple[Bucket, ...] = ()


class LLMGuard:
    """Runs the safety steps of the chat and completion routes (and the tutor's)."""

    def __init__(
        self,
        *,
        firewall: PromptFirewall,
        moderator: Moderator,
        masker: PIIMasker,
        limiter: RateLimiter | None,
        abuse: AbuseDetector | None,
        limits: LimitsPolicy,
        metrics: Metrics,
        log_prompts: bool = False,
    ) -> None:
        self.log_prompts = log_prompts
        self.firewall = firewall
        self.moderator = moderator
        self.masker = masker
        self.limiter = limiter
        self.abuse = abuse
        self.limits = limits
        self.metrics = metrics
        self._user_tokens, self._service_tokens, self._zone_tokens = (
            Rate.parse(text) if limits.enabled and text else None
            for text in (limits.user_llm_tokens, limits.service_llm_tokens, limits.zone_llm_tokens)
        )

    async def before(
        self,
        caller: Caller,
        payload: dict[str, Any],
        *,
        chat: bool,
        fingerprint: str | None = None,
    ) -> Guarded:
        """Check the prompt, take its token budget and mask its PII (payload edited in place).

        `fingerprint` replaces the prompt as what the repeated-prompt detector counts (a
        request whose media, not its text, make it what it is)."""
        texts = _chat_texts(payload["messages"]) if chat else _prompt_texts(payload["prompt"])
        prompt = "\n".join(texts)
        await self._abuse(caller, prompt if fingerprint is None else fingerprint)
        await self._firewall(caller, payload["messages"] if chat else None, prompt)
        await self.moderate_input(caller, prompt)
        if self.log_prompts:  # opt-in (MEGACITY_LOG_PROMPTS), and masked even then
            log.info(
                "prompt",
                extra={
                    "user": caller.user,
                    "zone": caller.zone,
                    "prompt": self.masker.redact(prompt),
                },
            )
        guarded = Guarded(caller)
        await self._reserve(guarded, payload, prompt)
        if caller.policy.pii == "mask":
            self._mask(guarded, payload, chat=chat)
        return guarded

    async def after(self, guarded: Guarded, answer: Answer) -> Answer:
        """Restore placeholders, moderate the output and settle the budget."""
        restore = guarded.mapping if guarded.caller.policy.restore_pii else {}
        moderate = guarded.caller.policy.moderation != "off"
        if answer.chunks is not None:
            if restore or moderate or guarded.buckets:
                answer.chunks = guarded_stream(
                    answer.chunks, self, guarded, restore=restore, moderate=moderate
                )
            return answer
        if answer.status != 200 or not answer.content_type.startswith("application/json"):
            return answer
        try:
            body = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            return answer
        if not isinstance(body, dict):
            return answer
        await self.settle(guarded, body.get("usage"))
        if restore or moderate:
            answer.body = orjson.dumps(await self._finish_body(guarded, body, restore, moderate))
        return answer

    async def refund(self, guarded: Guarded) -> None:
        """Give the whole up-front charge back (the LLM call failed before answering)."""
        await self.settle(guarded, {"total_tokens": 0})

    async def _finish_body(
        self, guarded: Guarded, body: dict[str, Any], restore: dict[str, str], moderate: bool
    ) -> dict[str, Any]:
        for choice in body.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            holder, key = content_slot(choice)
            if holder is None or not isinstance(holder.get(key), str):
                continue
            text = restore_pii(holder[key], restore) if restore else holder[key]
            holder[key] = text
            if moderate and (await self.output_flagged(guarded, text)):
                holder[key] = ""
                choice["finish_reason"] = "content_filter"
        return body

    async def output_flagged(self, guarded: Guarded, text: str) -> bool:
        """Moderate an answer's text; True when the zone blocks it (the caller cuts it)."""
        result = await self.moderator.moderate(moderated_text(text), direction="output")
        if not result.flagged:
            return False
        caller = guarded.caller
        outcome = "blocked" if caller.policy.moderation == "block" else "flagged"
        self.metrics.safety_event("moderation_output", outcome, caller.zone)
        log.warning(
            "LLM output moderated",
            extra={"user": caller.user, "zone": caller.zone, **_categories(result)},
        )
        return caller.policy.moderation == "block"

    async def settle(self, guarded: Guarded, usage: object) -> None:
        """Charge (or refund) the difference between the estimate and the reported usage."""
        if self.limiter is None or not guarded.buckets or not isinstance(usage, dict):
            return
        total = usage.get("total_tokens")
        if not isinstance(total, int | float) or isinstance(total, bool) or total < 0:
            return
        delta = float(total) - guarded.charged
        guarded.charged = float(total)
        if delta:
            for bucket in guarded.buckets:
                await self.limiter.adjust(bucket, delta)

    async def _abuse(self, caller: Caller, prompt: str) -> None:
        if self.abuse is None:
            return
        block = await self.abuse.record_request(caller.user, prompt, burst=caller.named)
        if block is not None:
            self.metrics.safety_event("abuse", block.reason.value, caller.zone)
            raise blocked_error(block)

    async def _firewall(
        self, caller: Caller, messages: Sequence[dict[str, Any]] | None, prompt: str
    ) -> None:
        mode = caller.policy.firewall
        if mode == "off":
            return
        verdict = (
            self.firewall.inspect_messages(messages)
            if messages is not None
            else self.firewall.inspect(prompt)
        )
        if not verdict.flagged:
            return
        kind = verdict.kind.value if verdict.kind is not None else "unknown"
        self.metrics.safety_event(
            "firewall", "blocked" if mode == "block" else "flagged", caller.zone
        )
        log.warning(
            "prompt firewall hit",
            extra={
                "user": caller.user,
                "zone": caller.zone,
                "kind": kind,
                "score": round(verdict.score, 3),
                "rules": list(verdict.reasons),
                "action": mode,
            },
        )
        if self.abuse is not None and caller.named:
            block = await self.abuse.record_firewall_hit(caller.user, kind)
            if block is not None:
                self.metrics.safety_event("abuse", block.reason.value, caller.zone)
        if mode == "block":
            raise ContentRejected(
                "the prompt was refused by the prompt firewall "
                f"({kind}: it tries to override or extract the assistant's instructions)",
                code="prompt_rejected",
                reason=kind,
            )

    async def moderate_input(self, caller: Caller, prompt: str) -> None:
        """Moderate text on its way in under the zone's policy; raises when it blocks."""
        mode = caller.policy.moderation
        if mode == "off":
            return
        result = await self.moderator.moderate(prompt, direction="input")
        if not result.flagged:
            return
        self.metrics.safety_event(
            "moderation", "blocked" if mode == "block" else "flagged", caller.zone
        )
        log.warning(
            "prompt moderated",
            extra={"user": caller.user, "zone": caller.zone, "action": mode, **_categories(result)},
        )
        if mode == "block":
            raise moderation_error(result, caller.locale)

    async def _reserve(self, guarded: Guarded, payload: dict[str, Any], prompt: str) -> None:
        """Take prompt tokens + max_tokens from the user's and the zone's LLM budgets."""
        if self.limiter is None:
            return
        caller = guarded.caller
        user_rate = self._user_tokens if caller.named else self._service_tokens
        zone_rate = self._zone_tokens
        max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            max_tokens = self.limits.default_max_tokens
        cost = float(estimate_tokens(prompt) + max_tokens)
        buckets = []
        # One request may take at most a whole bucket (it then waits for a full one): a
        # cost above capacity could never pass. The usage settles the difference after.
        if user_rate is not None:
            charge = min(cost, user_rate.capacity)
            buckets.append(Bucket(f"user:{caller.user}:llm_tokens", user_rate, charge))
        if zone_rate is not None:
            charge = min(cost, zone_rate.capacity)
            buckets.append(Bucket(f"zone:{caller.zone}:llm_tokens", zone_rate, charge))
        if not buckets:
            return
        decision = await self.limiter.take(buckets)
        if not decision.allowed:
            scope = "zone" if (decision.refused_by or "").startswith("zone:") else "user"
            self.metrics.safety_event("rate_limit", f"{scope}_llm_tokens", caller.zone)
            raise TooManyRequests(
                f"LLM token budget of this {scope} exhausted; retry later",
                retry_after_s=decision.retry_after_s,
                code="token_rate_limited",
            )
        guarded.buckets = tuple(buckets)
        guarded.charged = min(b.cost for b in buckets)

    def _mask(self, guarded: Guarded, payload: dict[str, Any], *, chat: bool) -> None:
        if chat:
            messages, mapping = self.masker.mask_messages(payload["messages"])
            payload["messages"] = messages
            guarded.mapping.update(mapping)
        else:
            prompt = payload["prompt"]
            if isinstance(prompt, str):
                payload["prompt"] = self.masker.mask(prompt, guarded.mapping).text
            else:
                payload["prompt"] = [self.masker.mask(p, guarded.mapping).text for p in prompt]
        if guarded.mapping:
            self.metrics.safety_event("pii", "masked", guarded.caller.zone)


def blocked_error(block: Block) -> TooManyRequests:
    """429 for a blocked user or a throttled prompt, saying why and until when (Retry-After)."""
    if block.scope == "prompt":
        wait = max(1.0, block.until - time.time())
        return TooManyRequests(
            f"the same prompt was sent too often ({block.detail}); "
            f"send it again in {math.ceil(wait)} s",
            retry_after_s=wait,
            code="prompt_throttled",
            reason=block.reason.value,
        )
    return TooManyRequests(
        f"temporarily blocked ({block.reason.value}: {block.detail}); retry later",
        retry_after_s=max(1.0, block.until - time.time()),
        code="temporarily_blocked",
        reason=block.reason.value,
    )


def moderation_error(result: ModerationResult, locale: str) -> ContentRejected:
    """400 naming the categories; for self-harm, where to find help instead of a bare no."""
    categories = [c.value for c in result.categories]
    if Category.SELF_HARM in result.categories:
        help_text = HELP_RESOURCES.get(locale, HELP_RESOURCES["en"])
        return ContentRejected(
            f"this looks like you may be going through something hard. {help_text}",
            code="self_harm_risk",
            categories=categories,
            help=help_text,
        )
    return ContentRejected(
        f"the text was refused by moderation ({', '.join(categories)})",
        code="content_rejected",
        categories=categories,
    )


def _categories(result: ModerationResult) -> dict[str, Any]:
    return {"categories": [c.value for c in result.categories], "rules": list(result.reasons)}


def _chat_texts(messages: Sequence[Any]) -> list[str]:
    texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") in ("system", "assistant"):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
    return texts


def _prompt_texts(prompt: str | list[str]) -> list[str]:
    return [prompt] if isinstance(prompt, str) else [p for p in prompt if isinstance(p, str)]

"""The LLM guard around one tutor request: the learner's words in, the LLMs' words out.

In: the text and script pass the firewall, moderation and the token budget, and their
personal data is masked (`admit`); whatever else will reach an LLM — a transcript, what a
vision model read — is masked with the same mapping (`mask`). Out: placeholders restored and
the answer moderated (`checked`); the budget settled with the usage the LLMs reported, or
refunded when the request fails.
"""

from __future__ import annotations

from typing import Any

from megacity.observability.metrics import Metrics
from megacity.pipelines.guard import Caller, Guarded, LLMGuard
from megacity.pipelines.multimodal.reason import Feedback
from megacity.pipelines.multimodal.request import TutorRequest
from megacity.safety.pii import restore as restore_pii


class RunGuard:
    """One request's guard state (see the module docstring)."""

    def __init__(self, guard: LLMGuard, caller: Caller, metrics: Metrics, scenario: str) -> None:
        self._guard = guard
        self._caller = caller
        self._metrics = metrics
        self._scenario = scenario
        self.guarded: Guarded | None = None

    async def admit(self, request: TutorRequest, max_tokens: int) -> tuple[str, str | None]:
        """Check the learner's words and take the budget; the masked question and script."""
        messages = [{"role": "user", "content": request.text or ""}]
        if request.script:
            messages.append({"role": "user", "content": request.script})
        payload: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens}
        self.guarded = await self._guard.before(
            self._caller, payload, chat=True, fingerprint=request.fingerprint()
        )
        masked = payload["messages"]
        script = str(masked[1]["content"]) if request.script else None
        return str(masked[0]["content"]), script

    def mask(self, text: str) -> str:
        guarded = self.guarded
        if guarded is None or guarded.caller.policy.pii != "mask":
            return text
        return self._guard.masker.mask(text, guarded.mapping).text

    def mapping(self) -> dict[str, str]:
        """Placeholder → original, when the zone restores them (else empty)."""
        guarded = self.guarded
        if guarded is None or not guarded.caller.policy.restore_pii:
            return {}
        return guarded.mapping

    def restore(self, text: str) -> str:
        mapping = self.mapping()
        return restore_pii(text, mapping) if mapping else text

    async def checked(self, feedback: Feedback) -> Feedback | None:
        """The answer with placeholders restored; None when output moderation blocks it."""
        restored = Feedback.model_validate_json(self.restore(feedback.model_dump_json()))
        guarded = self.guarded
        if guarded is None or guarded.caller.policy.moderation == "off":
            return restored
        texts = [restored.summary, *restored.strengths, *(f.text for f in restored.fixes)]
        if await self._guard.output_flagged(guarded, "\n".join([*texts, restored.next_exercise])):
            self._metrics.pipeline_fallback(self._scenario, "accelerator", "moderated")
            return None
        return restored

    async def settle(self, usage: list[dict[str, Any]]) -> None:
        """Charge what the LLM steps reported; nothing is refunded after this."""
        if self.guarded is None:
            return
        total = sum(int(u.get("total_tokens") or 0) for u in usage)
        await self._guard.settle(self.guarded, {"total_tokens": total})
        self.guarded = None

    async def refund(self) -> None:
        if self.guarded is not None:
            await self._guard.refund(self.guarded)
            self.guarded = None

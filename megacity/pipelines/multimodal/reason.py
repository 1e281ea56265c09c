"""The two LLM steps: the reasoning core (34b/70b tier) and the accelerator (7b tier).

Both answer the same JSON shape, `Feedback`: the core as an analysis of the features
(per-scenario prompt), the accelerator as the learner-facing answer in the learner's
language and level — written from the core's analysis, or from the features alone when
the plan skips the core. `check` validates an answer against the features: its language,
its lengths, and every anchor — a time outside the media, a body part that does not
exist, a word that was neither in the script nor heard drops that fix. Anything invalid
is `None`, and the caller falls back to the deterministic composer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, Field

from megacity.config.topology import Tier
from megacity.pipelines.multimodal.extractors import Job, Tools
from megacity.pipelines.multimodal.fuse import Features, missing_text, prompt_json
from megacity.pipelines.multimodal.jsonstream import JsonTextStream, TextDelta
from megacity.pipelines.multimodal.llm import complete, json_format, parse_json, stream
from megacity.routing.selector import Decision

BODY_PARTS = frozenset({"head", "torso", "left_arm", "right_arm", "left_leg", "right_leg"})
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_LATIN = re.compile(r"[A-Za-z]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
LANGUAGE_NAMES = {"ko": "Korean", "en": "English", "ja": "Japanese", "zh": "Chinese"}
MAX_FIXES = 6
MAX_STRENGTHS = 5


class Fix(BaseModel):
    text: str = Field(min_length=1, max_length=600)
    time_s: float | None = None
    end_s: float | None = None
    part: str | None = None
    word: str | None = None


class Feedback(BaseModel):
    """The JSON both LLM steps answer (and the deterministic composer produces)."""

    summary: str = Field(min_length=1, max_length=1200)
    strengths: list[str] = Field(default_factory=list, max_length=12)
    fixes: list[Fix] = Field(default_factory=list, max_length=12)
    next_exercise: str = Field(default="", max_length=600)


@dataclass(frozen=True)
class StepResult:
    """An LLM step's validated answer (None: invalid, late or failed) and why not."""

    feedback: Feedback | None
    model: str
    reason: str = "ok"  # ok, invalid_json, rejected, timeout, deadline, failed


def check(answer: Feedback | None, features: Features, locale: str | None) -> Feedback | None:
    """The answer with invalid anchors dropped, or None when it cannot be used."""
    if answer is None or not answer.summary.strip():
        return None
    if locale is not None and not _in_language(answer.summary, locale):
        return None
    duration = features.duration_s()
    words = features.words()
    fixes = [f for f in answer.fixes if _anchored(f, duration, words)]
    strengths = [s.strip() for s in answer.strengths if s.strip()]
    return Feedback(
        summary=answer.summary.strip(),
        strengths=strengths[:MAX_STRENGTHS],
        fixes=fixes[:MAX_FIXES],
        next_exercise=answer.next_exercise.strip(),
    )


def judged(text: str, features: Features, locale: str | None, model: str) -> StepResult:
    """An LLM step's text as a StepResult: ok, `invalid_json` (not the JSON asked for) or
    `rejected` (JSON that fails the checks: empty, wrong language)."""
    parsed = parse_json(text, Feedback)
    if parsed is None:
        return StepResult(None, model, "invalid_json")
    answer = check(parsed, features, locale)
    return StepResult(answer, model, "ok" if answer is not None else "rejected")


def _anchored(fix: Fix, duration: float | None, words: set[str]) -> bool:
    for t in (fix.time_s, fix.end_s):
        if t is not None and (t < 0 or (duration is not None and t > duration + 0.5)):
            return False
    if fix.time_s is not None and fix.end_s is not None and fix.end_s < fix.time_s:
        return False
    if fix.part is not None and fix.part not in BODY_PARTS:
        return False
    return fix.word is None or fix.word.casefold().strip(".,!?\"'") in words


def _in_language(text: str, locale: str) -> bool:
    counts = {
        "ko": len(_HANGUL.findall(text)),
        "ja": len(_KANA.findall(text)),
        "zh": len(_HAN.findall(text)),
        "en": len(_LATIN.findall(text)) / 4,
    }
    if locale == "ja":
        counts["ja"] += counts.pop("zh")
    return max(counts, key=lambda k: counts[k]) == locale


class Reasoner:
    """Runs the core and the accelerator through the LLM gateway, with their prompts."""

    def __init__(self, tools: Tools) -> None:
        self.tools = tools

    def core_model(self, job: Job) -> Decision:
        return self.tools.selector.for_tier(job.ctx, Tier.T34B)

    def accelerator_model(self, job: Job) -> Decision:
        return self.tools.selector.for_tier(job.ctx, Tier.T7B)

    async def core(
        self, job: Job, features: Features, scenario: str, mask: Callable[[str], str]
    ) -> StepResult:
        """The core's analysis of the features (validated; no language check)."""
        decision = self.core_model(job)
        locale = _prompt_locale(job.request.locale)
        messages = self.tools.prompts.get(scenario).render(
            {
                "features": prompt_json(features, mask),
                "missing": missing_text(features),
                "question": features.question or "-",
                "level": job.request.level,
            },
            locale,
        )
        payload = self._payload(decision, messages, "analysis")
        text, usage = await complete(self.tools.llm, job.ctx, decision, payload, job.started)
        if usage:
            job.usage.append(usage)
        return judged(text, features, None, decision.model.name)

    async def accelerate(
        self,
        job: Job,
        features: Features,
        analysis: Feedback | None,
        scores: dict[str, Any],
        mask: Callable[[str], str],
    ) -> AsyncGenerator[TextDelta | StepResult, None]:
        """Stream the learner-facing answer: text deltas as written, then the StepResult."""
        decision = self.accelerator_model(job)
        locale = _prompt_locale(job.request.locale)
        source = (
            mask(analysis.model_dump_json())
            if analysis is not None
            else prompt_json(features, mask)
        )
        messages = self.tools.prompts.get("accelerator").render(
            {
                "analysis": source,
                "scores": orjson.dumps(scores).decode()[:4000],
                "question": features.question or "-",
                "level": job.request.level,
                "language": LANGUAGE_NAMES.get(job.request.locale, "English"),
            },
            locale,
        )
        payload = self._payload(decision, messages, "feedback")
        scanner = JsonTextStream()
        parts: list[str] = []
        pieces = stream(self.tools.llm, job.ctx, decision, payload, job.started, job.usage)
        async with aclosing(pieces):  # a cut stream releases the node at once
            async for piece in pieces:
                parts.append(piece)
                for delta in scanner.feed(piece):
                    yield delta
        yield judged("".join(parts), features, job.request.locale, decision.model.name)

    def _payload(
        self, decision: Decision, messages: list[dict[str, str]], name: str
    ) -> dict[str, Any]:
        return {
            "model": decision.model.served_as,
            "messages": messages,
            "max_tokens": self.tools.policy.max_tokens,
            "temperature": 0.2,
            "response_format": json_format(name, Feedback),
        }


def _prompt_locale(locale: str) -> str:
    """The prompt templates exist in ko and en; other learners get English prompts."""
    return "ko" if locale == "ko" else "en"

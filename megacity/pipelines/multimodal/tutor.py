"""The multimodal tutor: one request, the design's six steps, one structured answer.

    input routing → extraction (parallel) → fusion → reasoning core → accelerator → composer

Each step is timed (``megacity_pipeline_stage_seconds{scenario,stage}``), logged and
bounded: by its own deadline and by what is left of the request's overall one. A step
that fails is replaced — an optional engine by a ``null`` and a ``degraded`` entry, an
LLM step by the deterministic composer — so the learner always gets an answer; only a
scenario's required engine failing fails the request. `MultimodalTutor.start` runs the
input step (a bad request is a plain 4xx, before any stream); then `TutorRun.events` is
the stream (the caller stops iterating → everything still running is cancelled) and
`TutorRun.result` runs the same steps and returns the result.

The LLM guard sees every text (guarding.py): the learner's text and script before any
engine runs, whatever else reaches an LLM masked with the same mapping, the answer
restored and moderated.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from typing import Any

from megacity.observability.metrics import Metrics
from megacity.pipelines.guard import Caller, LLMGuard
from megacity.pipelines.multimodal.cache import FeatureCache
from megacity.pipelines.multimodal.compose import deterministic, document, hints_of, scores_of
from megacity.pipelines.multimodal.events import Deltas, Event, features_event, stage_event
from megacity.pipelines.multimodal.extract import Outcome, extract
from megacity.pipelines.multimodal.extractors import Extractor, Job, Tools, build_extractors
from megacity.pipelines.multimodal.findings import Findings
from megacity.pipelines.multimodal.fuse import Features, fuse
from megacity.pipelines.multimodal.guarding import RunGuard
from megacity.pipelines.multimodal.jsonstream import TextDelta
from megacity.pipelines.multimodal.plan import Plan, plan_for
from megacity.pipelines.multimodal.reason import Feedback, Reasoner, StepResult
from megacity.pipelines.multimodal.request import TutorRequest
from megacity.routing.context import RequestContext

log = logging.getLogger("megacity.multimodal")

# Speaks a summary: (ctx, text, locale) → what the result's hints.voice holds (a job).
VoiceHook = Callable[[RequestContext, str, str], Awaitable[dict[str, Any]]]


class MultimodalTutor:
    """Built once per router (Services); `start` serves one request."""

    def __init__(
        self,
        tools: Tools,
        guard: LLMGuard,
        metrics: Metrics,
        *,
        voice: VoiceHook | None = None,
    ) -> None:
        self.tools = tools
        self.guard = guard
        self.metrics = metrics
        self.voice = voice
        self.extractors: dict[str, Extractor] = build_extractors(tools)
        self.reasoner = Reasoner(tools)
        policy = tools.policy
        self.cache = FeatureCache(policy.cache_entries, policy.cache_ttl_s)

    async def start(
        self,
        request: TutorRequest,
        ctx: RequestContext,
        caller: Caller,
        started: float,
        *,
        deadline_s: float | None = None,
    ) -> TutorRun:
        """Input routing — the plan, the guard, the cache — before anything is streamed, so
        a bad request is a plain 4xx; then `events()` or `result()` runs the rest."""
        run = TutorRun(self, request.check(), ctx, caller, started, deadline_s)
        await run.prepare()
        return run


class TutorRun:
    """One request's way through the steps, and what it gathers on the way."""

    def __init__(
        self,
        tutor: MultimodalTutor,
        request: TutorRequest,
        ctx: RequestContext,
        caller: Caller,
        started: float,
        deadline_s: float | None,
    ) -> None:
        self.tutor = tutor
        self.request = request
        self.ctx = ctx
        self.caller = caller
        self.started = started
        overall = deadline_s or tutor.tools.policy.deadlines.overall
        self.deadline = started + overall
        self.plan: Plan = plan_for(request)
        self.scenario = self.plan.scenario.value
        self.job = Job(ctx, request, self.plan.scenario, started)
        # From the request's arrival to here: the upload read, the form parsed, media checked.
        self.timings: dict[str, float] = {"receive": (time.perf_counter() - started) * 1000}
        self.sources: dict[str, str] = {}
        self.fallbacks: dict[str, str] = {}  # step → why the composer wrote its part
        self.models: dict[str, str] = {}
        self.outcomes: list[Outcome] = []
        self.guard = RunGuard(tutor.guard, caller, tutor.metrics, self.scenario)
        self.question = ""
        self.script: str | None = None
        self.cached: Features | None = None

    async def prepare(self) -> None:
        """The input step: guard the learner's words, mask them, look the features up."""
        with self.stage("input"):
            self.question, self.script, self.cached = await self._input()

    async def result(self) -> dict[str, Any]:
        """Run the remaining steps; the result document."""
        result: dict[str, Any] = {}
        async for event in self.events():
            if event.kind == "result":
                result = event.data
        return result

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def step_deadline(self, step: str) -> float:
        return max(0.0, min(self.tutor.tools.policy.deadlines.of(step), self.remaining()))

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, str]]:
        """Time a step; the caller may set ``outcome`` (ok unless it raised)."""
        began = time.perf_counter()
        state = {"outcome": "ok"}
        try:
            yield state
        except BaseException as exc:
            cut = isinstance(exc, GeneratorExit | asyncio.CancelledError)
            state["outcome"] = "cancelled" if cut else "failed"
            raise
        finally:
            seconds = time.perf_counter() - began
            self.timings[name] = seconds * 1000
            self.tutor.metrics.pipeline_stage(self.scenario, name, state["outcome"], seconds)
            log.info(
                "pipeline stage",
                extra={
                    "request_id": self.ctx.request_id,
                    "scenario": self.scenario,
                    "stage": name,
                    "outcome": state["outcome"],
                    "ms": round(seconds * 1000, 1),
                },
            )

    async def events(self) -> AsyncIterator[Event]:
        """The stream: stage, features, delta events, then the result (see module docstring)."""
        question, script = self.question, self.script
        try:
            yield stage_event("input", "end", self.timings["input"], scenario=self.scenario)
            features = self.cached
            if features is None:
                async with aclosing(self._extract(question, script)) as extracting:
                    async for event in extracting:
                        yield event
                features = self._fuse(question, script)
            else:
                for name, signal in features.signals.items():
                    yield Event(
                        "features", {"engine": name, "status": "cached", "features": signal}
                    )
            findings = self._findings(features)
            analysis = None
            if self.plan.core:
                yield stage_event("core", "start")
                analysis = await self._core(features, findings)
                yield stage_event("core", "end", self.timings["core"], source=self.sources["core"])
            feedback: Feedback | None = None
            async with aclosing(self._accelerate(features, analysis, findings)) as writing:
                async for item in writing:
                    if isinstance(item, Event):
                        yield item
                    else:
                        feedback = item
            yield Event("result", await self._compose(features, findings, feedback))
        except BaseException:
            await self.guard.refund()
            raise

    async def _input(self) -> tuple[str, str | None, Features | None]:
        """Guard the learner's words, mask them for the LLMs, look the features up."""
        max_tokens = 2 * self.tutor.tools.policy.max_tokens  # the two LLM steps
        question, script = await self.guard.admit(self.request, max_tokens)
        return question, script, self.tutor.cache.get(self._cache_key())

    def _cache_key(self) -> str:
        return f"{self.caller.zone}:{self.request.fingerprint()}"

    async def _extract(self, question: str, script: str | None) -> AsyncGenerator[Event, None]:
        yield stage_event("extract", "start", engines=list(self.plan.extractors))
        with self.stage("extract") as state:
            tools = self.tutor.tools
            outcomes = extract(
                self.tutor.extractors,
                self.plan,
                self.job,
                tools.policy.deadlines,
                self.remaining,
                self.tutor.metrics,
            )
            async with aclosing(outcomes):  # leaving early cancels the extractors at once
                async for outcome in outcomes:
                    self.outcomes.append(outcome)
                    yield features_event(outcome)
            if any(not o.ok for o in self.outcomes):
                state["outcome"] = "degraded"
        for outcome in self.outcomes:  # each extractor's own time, beside the stage's wall time
            self.timings[f"extract.{outcome.name}"] = outcome.seconds * 1000
        yield stage_event("extract", "end", self.timings["extract"], parallel_ms=self._parts_ms())

    def _parts_ms(self) -> dict[str, float]:
        return {o.name: round(o.seconds * 1000, 1) for o in self.outcomes}

    def _fuse(self, question: str, script: str | None) -> Features:
        with self.stage("fuse"):
            features = fuse(
                self.request, self.scenario, question, script, self.outcomes, self.plan.extractors
            )
            self.tutor.cache.put(self._cache_key(), features)
        return features

    def _findings(self, features: Features) -> list[Findings]:
        found = []
        for name, signal in features.signals.items():
            extractor = self.tutor.extractors.get(name)
            if extractor is not None and signal is not None:
                found.append(extractor.findings(extractor.features.model_validate(signal)))
        return found

    async def _core(self, features: Features, findings: list[Findings]) -> Feedback:
        """The core's analysis, or the deterministic one (in English) when it fails."""
        deadline = self.step_deadline("core")
        reasoner = self.tutor.reasoner
        self.models["core"] = reasoner.core_model(self.job).model.name
        with self.stage("core") as state:
            result = await self._llm_step(
                "core", deadline, reasoner.core(self.job, features, self.scenario, self.guard.mask)
            )
            state["outcome"] = "ok" if result.feedback else result.reason
        self.sources["core"] = "llm" if result.feedback else "deterministic"
        if result.feedback is None:
            self.fallbacks["core"] = result.reason
            self.tutor.metrics.pipeline_fallback(self.scenario, "core", result.reason)
            return deterministic(findings, features, "en")
        return result.feedback

    async def _llm_step(
        self, step: str, deadline: float, work: Awaitable[StepResult]
    ) -> StepResult:
        if deadline <= 0:
            if hasattr(work, "close"):
                work.close()
            return StepResult(None, "", "deadline")
        try:
            async with asyncio.timeout(deadline):
                return await work
        except TimeoutError:
            return StepResult(None, "", "timeout")
        except Exception as exc:  # any failure of an LLM step: the deterministic composer
            self._llm_failed(step, exc)
            return StepResult(None, "", "failed")

    async def _accelerate(
        self, features: Features, analysis: Feedback | None, findings: list[Findings]
    ) -> AsyncGenerator[Event | Feedback, None]:
        """Stream the learner-facing text; end with its validated Feedback (or nothing)."""
        deadline = self.step_deadline("accelerator")
        self.models["accelerator"] = self.tutor.reasoner.accelerator_model(self.job).model.name
        yield stage_event("accelerator", "start")
        result = StepResult(None, "", "deadline")
        deltas = Deltas(self.guard.mapping())
        with self.stage("accelerator") as state:
            if deadline > 0:
                try:
                    written = self.tutor.reasoner.accelerate(
                        self.job, features, analysis, scores_of(findings), self.guard.mask
                    )
                    async with asyncio.timeout(deadline), aclosing(written):
                        async for item in written:
                            if not isinstance(item, TextDelta):
                                result = item
                            elif (event := deltas.feed(item)) is not None:
                                yield event
                except TimeoutError:
                    result = StepResult(None, result.model, "timeout")
                except Exception as exc:  # any failure of an LLM step: the composer answers
                    self._llm_failed("accelerator", exc)
                    result = StepResult(None, "", "failed")
            state["outcome"] = "ok" if result.feedback else result.reason
        for event in deltas.flush():
            yield event
        yield stage_event(
            "accelerator", "end", self.timings["accelerator"], outcome=state["outcome"]
        )
        if result.feedback is not None:
            yield result.feedback
        else:
            self.fallbacks["accelerator"] = result.reason
            self.tutor.metrics.pipeline_fallback(self.scenario, "accelerator", result.reason)

    def _llm_failed(self, step: str, exc: Exception) -> None:
        log.warning(
            "LLM step failed",
            extra={
                "request_id": self.ctx.request_id,
                "step": step,
                "error": f"{type(exc).__name__}: {str(exc)[:300]}",
            },
        )

    async def _compose(
        self, features: Features, findings: list[Findings], feedback: Feedback | None
    ) -> dict[str, Any]:
        with self.stage("compose"):
            locale = self.request.locale
            if feedback is not None:
                feedback = await self.guard.checked(feedback)
                if feedback is None:
                    self.fallbacks["accelerator"] = "moderated"
            self.sources["accelerator"] = "llm" if feedback is not None else "deterministic"
            final = feedback or deterministic(findings, features, locale)
            hints: dict[str, Any] = hints_of(findings)
            if self.request.voice:
                hints["voice"] = await self._speak(final.summary, locale)
            await self.guard.settle(self.job.usage)
            return document(
                analysis_id=uuid.uuid4().hex,
                features=features,
                feedback=final,
                scores=scores_of(findings),
                hints=hints,
                sources=self.sources,
                fallbacks=self.fallbacks,
                models=self.models,
                timings_ms={**self.timings, "total": (time.perf_counter() - self.started) * 1000},
            )

    async def _speak(self, text: str, locale: str) -> dict[str, Any]:
        if self.tutor.voice is None:
            return {"status": "unavailable", "reason": "no TTS configured"}
        try:
            return await self.tutor.voice(self.ctx, text, locale)
        except Exception as exc:  # the written answer stands without its voice
            log.warning("voice feedback not queued", extra={"error": str(exc)[:300]})
            return {"status": "unavailable", "reason": getattr(exc, "code", type(exc).__name__)}

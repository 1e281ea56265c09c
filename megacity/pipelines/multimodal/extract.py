"""Extraction: the plan's extractors in parallel, each under its own deadline.

Outcomes come out as each extractor finishes (the stream sends them at once). An
optional extractor that fails, finds nothing or misses its deadline becomes a
``degraded`` outcome and the others go on; a required one that does fails the request —
with its own 4xx when the media was the problem (no audio track, unknown reference), else
503 with Retry-After — and every extractor still running is cancelled. So is everything
when the caller stops iterating (the client left, the overall deadline passed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from pydantic import BaseModel

from megacity.config.multimodal import StageDeadlines
from megacity.errors import MegaCityError, ServiceUnavailable, UnprocessableEntity
from megacity.observability.metrics import Metrics
from megacity.pipelines.multimodal.extractors import Extractor, Job, Unavailable
from megacity.pipelines.multimodal.plan import Plan

log = logging.getLogger("megacity.multimodal")


@dataclass(frozen=True)
class Outcome:
    """One extractor's result: features, or why there are none (`reason`, `detail`)."""

    name: str
    required: bool
    features: BaseModel | None
    reason: str | None = None
    detail: str = ""
    seconds: float = 0.0
    error: MegaCityError | None = None

    @property
    def ok(self) -> bool:
        return self.features is not None


async def extract(
    extractors: dict[str, Extractor],
    plan: Plan,
    job: Job,
    deadlines: StageDeadlines,
    remaining: Callable[[], float],
    metrics: Metrics,
) -> AsyncGenerator[Outcome, None]:
    """Run the plan's applicable extractors; yield each outcome as it finishes."""
    chosen = [
        (extractors[name], name in plan.required)
        for name in plan.extractors
        if name in extractors and extractors[name].applies(job.request)
    ]
    tasks = [
        asyncio.create_task(
            _one(ext, required, job, min(deadlines.of(ext.name), max(remaining(), 0.001))),
            name=f"extract-{ext.name}",
        )
        for ext, required in chosen
    ]
    try:
        for next_done in asyncio.as_completed(tasks):
            outcome = await next_done
            _record(outcome, job, metrics)
            if not outcome.ok and outcome.required:
                raise required_failure(outcome)
            yield outcome
    finally:
        for task in tasks:
            task.cancel()
        for task, (ext, _) in zip(tasks, chosen, strict=True):
            if not task.done() or task.cancelled():
                metrics.pipeline_stage(job.scenario.value, f"extract.{ext.name}", "cancelled", 0.0)
        await asyncio.gather(*tasks, return_exceptions=True)


async def _one(ext: Extractor, required: bool, job: Job, deadline_s: float) -> Outcome:
    began = time.perf_counter()

    def out(features: BaseModel | None = None, **why: object) -> Outcome:
        return Outcome(ext.name, required, features, seconds=time.perf_counter() - began, **why)  # type: ignore[arg-type]

    try:
        async with asyncio.timeout(deadline_s):
            return out(await ext.extract(job))
    except Unavailable as exc:
        return out(reason=exc.reason, detail=exc.detail)
    except TimeoutError:
        return out(reason="timeout", detail=f"no result within its {deadline_s:.1f} s deadline")
    except MegaCityError as exc:
        return out(reason=exc.code, detail=exc.message, error=exc)
    except Exception as exc:  # an engine bug must not take the whole answer down
        log.exception("extractor failed", extra={"engine": ext.name})
        return out(reason="failed", detail=type(exc).__name__)


def _record(outcome: Outcome, job: Job, metrics: Metrics) -> None:
    scenario = job.scenario.value
    state = "ok" if outcome.ok else ("timeout" if outcome.reason == "timeout" else "degraded")
    metrics.pipeline_stage(scenario, f"extract.{outcome.name}", state, outcome.seconds)
    if not outcome.ok:
        metrics.pipeline_degraded(scenario, outcome.name, outcome.reason or "failed")
    log.info(
        "extractor done",
        extra={
            "request_id": job.ctx.request_id,
            "scenario": scenario,
            "engine": outcome.name,
            "outcome": state,
            "reason": outcome.reason,
            "ms": round(outcome.seconds * 1000, 1),
        },
    )


def required_failure(outcome: Outcome) -> MegaCityError:
    """The request's error when a required extractor failed (see the module docstring)."""
    if outcome.error is not None and outcome.error.status < 500:
        return outcome.error
    if outcome.error is None and outcome.reason not in ("timeout", "failed"):
        return UnprocessableEntity(
            f"{outcome.name}: {outcome.detail or outcome.reason}",
            code=outcome.reason or "no_signal",
            param="file",
        )
    return ServiceUnavailable(
        f"the {outcome.name} engine this scenario needs is unavailable"
        f" ({outcome.reason}: {outcome.detail}); retry shortly",
        code="engine_unavailable",
        retry_after_s=5,
        engine=outcome.name,
    )

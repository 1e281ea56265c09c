"""The feedback composer: the structured answer a learner gets, always.

`deterministic` builds the answer from the extractors' findings alone — their scores,
and their anchored points ranked by weight — in Korean or English (other locales read
English). It is the fallback of every LLM step, so a learner always gets correct feedback.
`document` assembles the final result: the words (the LLM's when valid, else the
deterministic ones), the scores (always the engines', never an LLM's), hints such as the
dance overlay, the fused features and what was degraded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from megacity.pipelines.multimodal.findings import Findings, Point
from megacity.pipelines.multimodal.fuse import Features
from megacity.pipelines.multimodal.reason import Feedback, Fix

MAX_SUMMARY_POINTS = 2
MAX_STRENGTHS = 3
MAX_FIXES = 4
_MISSING = {
    "en": "Some signals were not available ({}), so this feedback leaves them out.",
    "ko": "일부 신호를 쓸 수 없어서({}) 이번 피드백에서는 빠졌어요.",
}
_NOTHING = {
    "en": "Thanks for sending this. There was not enough to measure for detailed feedback yet.",
    "ko": "보내 줘서 고마워요. 아직 자세한 피드백을 줄 만큼 측정할 내용이 부족했어요.",
}
_KEEP_GOING = {
    "en": "Record one more try and send it to compare.",
    "ko": "한 번 더 녹화해서 보내 주면 비교해 볼게요.",
}


def scores_of(findings: Iterable[Findings]) -> dict[str, Any]:
    """Every extractor's scores, merged (the engines' numbers, unchanged)."""
    merged: dict[str, Any] = {}
    for f in findings:
        merged.update(f.scores)
    return merged


def hints_of(findings: Iterable[Findings]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for f in findings:
        merged.update(f.hints)
    return merged


def deterministic(findings: list[Findings], features: Features, locale: str) -> Feedback:
    """The answer from the findings alone (see the module docstring)."""
    lang = "ko" if locale == "ko" else "en"
    summary = [
        p.text(lang) for p in _top((p for f in findings for p in f.summary), MAX_SUMMARY_POINTS)
    ]
    if features.degraded:
        engines = ", ".join(d.engine for d in features.degraded)
        summary.append(_MISSING[lang].format(engines))
    strengths = _top((p for f in findings for p in f.strengths), MAX_STRENGTHS)
    fixes = _top((p for f in findings for p in f.fixes), MAX_FIXES)
    exercises = _top((p for f in findings for p in f.exercises), 1)
    return Feedback(
        summary=" ".join(summary) or _NOTHING[lang],
        strengths=[p.text(lang) for p in strengths],
        fixes=[_fix(p, lang) for p in fixes],
        next_exercise=exercises[0].text(lang) if exercises else _KEEP_GOING[lang],
    )


def _top(points: Iterable[Point], n: int) -> list[Point]:
    return sorted(points, key=lambda p: -p.weight)[:n]


def _fix(point: Point, lang: str) -> Fix:
    a = point.anchor
    if a is None:
        return Fix(text=point.text(lang))
    return Fix(text=point.text(lang), time_s=a.time_s, end_s=a.end_s, part=a.part, word=a.word)


def document(
    *,
    analysis_id: str,
    features: Features,
    feedback: Feedback,
    scores: dict[str, Any],
    hints: dict[str, Any],
    sources: dict[str, str],
    fallbacks: dict[str, str],
    models: dict[str, str],
    timings_ms: dict[str, float],
) -> dict[str, Any]:
    """The result every client reads (README, "Multimodal tutor")."""
    return {
        "id": analysis_id,
        "version": features.version,
        "scenario": features.scenario,
        "locale": features.locale,
        "summary": feedback.summary,
        "strengths": feedback.strengths,
        "fixes": [f.model_dump(exclude_none=True) for f in feedback.fixes],
        "next_exercise": feedback.next_exercise,
        "scores": scores,
        "hints": hints,
        "degraded": [d.model_dump() for d in features.degraded],
        "sources": sources,
        "fallbacks": fallbacks,
        "models": models,
        "features": features.model_dump(mode="json"),
        "timings_ms": {k: round(v, 1) for k, v in timings_ms.items()},
    }

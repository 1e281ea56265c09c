"""Held-out measurement of the PII detector, prompt firewall and lexicon moderator.

The three ``holdout_*.jsonl`` sets were written without reading the detectors or their
labelled sets, and committed before the detectors were run on them, so the numbers
printed here are an honest estimate on unseen text. Run with ``-s`` to see the tables.
The assertions are loose sanity floors, not targets: tune nothing against this file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from megacity.safety.firewall import PromptFirewall
from megacity.safety.moderation import LexiconModerator
from megacity.safety.pii import find_pii

DATA = Path(__file__).parent / "data"
OVERLAP = 0.8  # share of a gold span's characters a prediction must cover
STRUCTURED = ("PHONE", "RRN", "EMAIL", "CARD", "ACCOUNT", "ADDRESS", "IP")
ABUSIVE = ("toxicity", "harassment", "hate")


def _load(name: str) -> list[dict[str, Any]]:
    """Rows of one held-out JSONL file."""
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _ratio(num: int, den: int) -> float:
    """num / den, 1.0 when there is nothing to count (no predictions, no gold)."""
    return num / den if den else 1.0


def _table(title: str, header: tuple[str, ...], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table; floats print with three decimals."""
    cells = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [f"\n== {title}", fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in cells]
    return "\n".join(lines)


# ---------------------------------------------------------------- PII


@dataclass(frozen=True)
class Span:
    """A labelled or predicted span: kind name and [start, end) character offsets."""

    kind: str
    start: int
    end: int


def _covers(pred: Span, gold: Span) -> bool:
    """True when pred has gold's kind and covers at least OVERLAP of gold's characters."""
    shared = min(pred.end, gold.end) - max(pred.start, gold.start)
    return pred.kind == gold.kind and shared >= OVERLAP * (gold.end - gold.start)


@dataclass
class PIIScore:
    """Per-kind counts over the PII set."""

    gold: Counter[str]
    found: Counter[str]
    predicted: Counter[str]
    correct: Counter[str]
    misses: list[str]
    spurious: list[str]


def _gold_spans(row: dict[str, Any]) -> list[Span]:
    """Gold spans of one row, located by their (unique) substring."""
    text: str = row["text"]
    spans = []
    for item in row["pii"]:
        start = text.index(item["text"])
        spans.append(Span(item["kind"], start, start + len(item["text"])))
    return spans


def _score_pii(rows: list[dict[str, Any]]) -> PIIScore:
    """Match predictions to gold spans row by row and count per kind."""
    score = PIIScore(Counter(), Counter(), Counter(), Counter(), [], [])
    for row in rows:
        text = row["text"]
        gold = _gold_spans(row)
        preds = [Span(str(m.kind.value), m.start, m.end) for m in find_pii(text)]
        for g in gold:
            score.gold[g.kind] += 1
            if any(_covers(p, g) for p in preds):
                score.found[g.kind] += 1
            else:
                score.misses.append(f"{g.kind}: {text[g.start : g.end]!r} in {text!r}")
        for p in preds:
            score.predicted[p.kind] += 1
            if any(_covers(p, g) for g in gold):
                score.correct[p.kind] += 1
            else:
                score.spurious.append(f"{p.kind}: {text[p.start : p.end]!r} in {text!r}")
    return score


@pytest.fixture(scope="module")
def pii_score() -> PIIScore:
    """The PII set scored once for all PII tests."""
    return _score_pii(_load("holdout_pii.jsonl"))


def test_pii_holdout_report(pii_score: PIIScore) -> None:
    """Print per-kind precision/recall, the misses and the spurious spans."""
    s = pii_score
    kinds = sorted(set(s.gold) | set(s.predicted))
    rows: list[tuple[object, ...]] = []
    for k in kinds:
        rows.append(
            (k, s.gold[k], s.found[k], _ratio(s.found[k], s.gold[k]), s.predicted[k],
             s.correct[k], _ratio(s.correct[k], s.predicted[k]))
        )  # fmt: skip
    tg, tf = sum(s.gold.values()), sum(s.found.values())
    tp, tc = sum(s.predicted.values()), sum(s.correct.values())
    rows.append(("ALL", tg, tf, _ratio(tf, tg), tp, tc, _ratio(tc, tp)))
    header = ("kind", "gold", "found", "recall", "pred", "correct", "precision")
    print(_table("PII held-out", header, rows))
    print("\nmissed:", *s.misses, sep="\n  ")
    print("\nspurious:", *s.spurious, sep="\n  ")
    assert tg >= 100


def test_pii_holdout_floors(pii_score: PIIScore) -> None:
    """Structured recall ≥ 0.8, name recall ≥ 0.6, overall precision ≥ 0.8."""
    s = pii_score
    structured = _ratio(sum(s.found[k] for k in STRUCTURED), sum(s.gold[k] for k in STRUCTURED))
    names = _ratio(s.found["NAME"], s.gold["NAME"])
    precision = _ratio(sum(s.correct.values()), sum(s.predicted.values()))
    assert structured >= 0.8
    assert names >= 0.6
    assert precision >= 0.8


# ---------------------------------------------------------------- firewall


@dataclass
class FirewallScore:
    """Detection per attack kind and false positives on benign rows."""

    attacks: Counter[str]
    detected: Counter[str]
    right_kind: Counter[str]
    benign: Counter[str]  # keys: all, tricky, plain
    flagged: Counter[str]
    misses: list[str]
    false_alarms: list[str]


def _score_firewall(rows: list[dict[str, Any]]) -> FirewallScore:
    """Inspect every row once and count detections and false alarms."""
    fw = PromptFirewall()
    s = FirewallScore(Counter(), Counter(), Counter(), Counter(), Counter(), [], [])
    for row in rows:
        verdict = fw.inspect(row["text"])
        if row["label"] == "attack":
            key = f"{row['kind']}/{row['lang']}"
            for k in (row["kind"], key, "ALL"):
                s.attacks[k] += 1
                s.detected[k] += int(verdict.flagged)
                s.right_kind[k] += int(verdict.flagged and _value(verdict.kind) == row["kind"])
            if not verdict.flagged:
                s.misses.append(f"{row['kind']}: {row['text']!r}")
            continue
        groups = ("all", "tricky" if row.get("tricky") else "plain", f"lang:{row['lang']}")
        for g in groups:
            s.benign[g] += 1
            s.flagged[g] += int(verdict.flagged)
        if verdict.flagged:
            s.false_alarms.append(f"{_value(verdict.kind)}: {row['text']!r}")
    return s


def _value(kind: object) -> str | None:
    """The string value of a StrEnum member (or None)."""
    return None if kind is None else str(getattr(kind, "value", kind))


@pytest.fixture(scope="module")
def firewall_score() -> FirewallScore:
    """The firewall set scored once for all firewall tests."""
    return _score_firewall(_load("holdout_firewall.jsonl"))


def test_firewall_holdout_report(firewall_score: FirewallScore) -> None:
    """Print detection per kind (and language), FP rates, misses and false alarms."""
    s = firewall_score
    att = [
        (k, s.attacks[k], s.detected[k], _ratio(s.detected[k], s.attacks[k]),
         _ratio(s.right_kind[k], s.attacks[k]))
        for k in sorted(s.attacks, key=lambda k: (k == "ALL", k))
    ]  # fmt: skip
    print(_table("firewall attacks", ("kind", "n", "flagged", "detection", "right kind"), att))
    ben = [
        (g, s.benign[g], s.flagged[g], _ratio(s.flagged[g], s.benign[g])) for g in sorted(s.benign)
    ]
    print(_table("firewall benign", ("subset", "n", "flagged", "FP rate"), ben))
    print("\nmissed attacks:", *s.misses, sep="\n  ")
    print("\nfalse alarms:", *s.false_alarms, sep="\n  ")
    assert s.attacks["ALL"] == 80 and s.benign["all"] == 150


def test_firewall_holdout_floors(firewall_score: FirewallScore) -> None:
    """Overall detection ≥ 0.6, FP on benign ≤ 0.05."""
    s = firewall_score
    assert _ratio(s.detected["ALL"], s.attacks["ALL"]) >= 0.6
    assert _ratio(s.flagged["all"], s.benign["all"]) <= 0.05


# ---------------------------------------------------------------- moderation


@dataclass
class ModerationScore:
    """Recall per harmful label and false positives on benign rows."""

    harmful: Counter[str]
    caught: Counter[str]
    benign: Counter[str]
    flagged: Counter[str]
    misses: list[str]
    false_alarms: list[str]


def _categories(result: Any) -> set[str]:
    """Lower-case category values of one moderation result."""
    return {str(getattr(c, "value", c)).lower().replace("-", "_") for c in result.categories}


def _score_moderation(rows: list[dict[str, Any]]) -> ModerationScore:
    """Classify every row once; self-harm counts only when self_harm is a category."""
    mod = LexiconModerator()
    s = ModerationScore(Counter(), Counter(), Counter(), Counter(), [], [])
    for row in rows:
        result = mod.classify(row["text"])
        label, cats = row["label"], _categories(result)
        if label == "benign":
            for g in ("all", "tricky" if row.get("tricky") else "plain", f"lang:{row['lang']}"):
                s.benign[g] += 1
                s.flagged[g] += int(result.flagged)
            if result.flagged:
                s.false_alarms.append(f"{sorted(cats)}: {row['text']!r}")
            continue
        hit = "self_harm" in cats if label == "self_harm" else bool(result.flagged)
        group = "self_harm" if label == "self_harm" else "abusive"
        for k in {label, f"{group}/{row['lang']}", group}:  # a set: self_harm is both
            s.harmful[k] += 1
            s.caught[k] += int(hit)
        if not hit:
            s.misses.append(f"{label} -> {sorted(cats)}: {row['text']!r}")
    return s


@pytest.fixture(scope="module")
def moderation_score() -> ModerationScore:
    """The moderation set scored once for all moderation tests."""
    return _score_moderation(_load("holdout_moderation.jsonl"))


def test_moderation_holdout_report(moderation_score: ModerationScore) -> None:
    """Print recall per label, FP rates, misses and false alarms."""
    s = moderation_score
    rec = [
        (k, s.harmful[k], s.caught[k], _ratio(s.caught[k], s.harmful[k])) for k in sorted(s.harmful)
    ]
    print(_table("moderation harmful", ("label", "n", "caught", "recall"), rec))
    ben = [
        (g, s.benign[g], s.flagged[g], _ratio(s.flagged[g], s.benign[g])) for g in sorted(s.benign)
    ]
    print(_table("moderation benign", ("subset", "n", "flagged", "FP rate"), ben))
    print("\nmissed:", *s.misses, sep="\n  ")
    print("\nfalse alarms:", *s.false_alarms, sep="\n  ")
    assert s.harmful["abusive"] == 50 and s.harmful["self_harm"] == 25


def test_moderation_holdout_floors(moderation_score: ModerationScore) -> None:
    """Abusive and self-harm recall ≥ 0.6, FP on benign ≤ 0.05."""
    s = moderation_score
    assert _ratio(s.caught["abusive"], s.harmful["abusive"]) >= 0.6
    assert _ratio(s.caught["self_harm"], s.harmful["self_harm"]) >= 0.6
    assert _ratio(s.flagged["all"], s.benign["all"]) <= 0.05

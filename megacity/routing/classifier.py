"""Complexity classifier: which tier a prompt needs, from deterministic, explainable features."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from megacity.config.topology import TIERS, Tier

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_CODE = re.compile(r"```|#include|=>|\b(?:def|class|function|SELECT|import|return)\b")
_MATH = re.compile(
    r"\d\s*[-+*/^=]\s*\d|\\frac|\\int|\bsqrt\b|방정식|미분|적분|증명|equation|integral"
)

# Question types, most demanding first; each is (name, tier floor, pattern).
_QUESTION_TYPES: tuple[tuple[str, Tier, re.Pattern[str]], ...] = (
    (
        "essay",
        Tier.T34B,
        re.compile(r"논술|첨삭|에세이|자기소개서|\bessays?\b|critique|평가해|논리.*창의", re.I),
    ),
    (
        "reasoning",
        Tier.T34B,
        re.compile(r"step[- ]by[- ]step|prove|proof|derive|단계별|증명|풀이 과정|왜 그런지", re.I),
    ),
    ("code", Tier.T14B, re.compile(r"code review|refactor|bug|코드 리뷰|디버그|리팩터", re.I)),
    (
        "explain",
        Tier.T14B,
        re.compile(r"\bexplain\b|\bwhy\b|\bhow does\b|compare|설명|이유|비교|차이", re.I),
    ),
    (
        "short",
        Tier.T7B,
        re.compile(r"^\s*(what|who|when|where|which|is|are|define)\b|뭐|무엇|언제|누구|뜻", re.I),
    ),
)


@dataclass(frozen=True, slots=True)
class Classification:
    """The chosen tier and the features and reasons behind it."""

    tier: Tier
    features: dict[str, object] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()


# Long prompts are classified from their head and tail: the instruction is almost always
# at one end (an essay followed by "첨삭해 주세요"), and scanning 20k characters with a
# dozen regexes would cost milliseconds per request.
_HEAD, _TAIL = 3000, 1000


def _sample(text: str) -> str:
    return text if len(text) <= _HEAD + _TAIL else f"{text[:_HEAD]}\n{text[-_TAIL:]}"


def detect_language(text: str) -> str:
    """ko / ja / zh / en by script counts (the dominant script wins; Latin defaults to en)."""
    text = _sample(text)
    counts = {
        "ko": len(_HANGUL.findall(text)),
        "ja": len(_KANA.findall(text)),
        "zh": len(_HAN.findall(text)),
        "en": len(_LATIN.findall(text)) / 4,  # ~4 latin letters carry what one syllable does
    }
    if counts["ja"] and counts["ja"] * 3 >= counts["zh"]:
        counts["ja"] += counts.pop("zh")  # kanji inside Japanese text
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else "en"


def estimate_tokens(text: str) -> int:
    """A tokenizer-free token estimate: ~4 chars per token for Latin, ~1 per CJK character."""
    # CJK characters take 3 bytes in UTF-8, ASCII one: the byte excess counts them in C.
    wide = (len(text.encode("utf-8", "surrogatepass")) - len(text)) // 2
    return wide + (len(text) - wide) // 4


def classify(
    text: str,
    *,
    multimodal_parts: int = 0,
    turns: int = 1,
    zone_min: Tier = Tier.T7B,
    zone_max: Tier = Tier.T70B,
) -> Classification:
    """Pick a tier for a prompt; the result lists every feature and rule that decided it."""
    tokens = estimate_tokens(text)
    text = _sample(text)
    language = detect_language(text)
    qtype, floor = _question_type(text)
    rank = floor.rank
    reasons = [f"question type {qtype} → at least {floor.value}"]
    for threshold, tier in ((3000, Tier.T34B), (600, Tier.T14B)):
        if tokens >= threshold and tier.rank > rank:
            rank = tier.rank
            reasons.append(f"{tokens} tokens ≥ {threshold} → {tier.value}")
    if _CODE.search(text) and rank < Tier.T14B.rank:
        rank = Tier.T14B.rank
        reasons.append("code in prompt → 14b")
    if _MATH.search(text) and rank < Tier.T14B.rank:
        rank = Tier.T14B.rank
        reasons.append("math in prompt → 14b")
    if turns >= 8 and rank < Tier.T34B.rank:
        rank = Tier.T34B.rank
        reasons.append(f"{turns}-turn conversation → 34b")
    if multimodal_parts:
        rank = Tier.T70B.rank
        reasons.append(f"{multimodal_parts} multimodal part(s) → 70b")
    clamped = min(max(rank, zone_min.rank), zone_max.rank)
    if clamped != rank:
        reasons.append(f"zone policy clamps to {zone_min.value}–{zone_max.value}")
    features: dict[str, object] = {
        "tokens": tokens,
        "language": language,
        "question_type": qtype,
        "multimodal_parts": multimodal_parts,
        "turns": turns,
    }
    return Classification(TIERS[clamped], features, tuple(reasons))


def _question_type(text: str) -> tuple[str, Tier]:
    for name, floor, pattern in _QUESTION_TYPES:
        if pattern.search(text):
            return name, floor
    return "general", Tier.T14B if len(text) > 280 else Tier.T7B

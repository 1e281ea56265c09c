"""Complexity classifier: prompt → tier, with the features and reasons behind it."""

from __future__ import annotations

import pytest

from megacity.config.topology import Tier
from megacity.routing.classifier import classify, detect_language, estimate_tokens

PROMPTS: list[tuple[str, Tier, str]] = [
    # short factual questions
    ("What is the capital of France?", Tier.T7B, "short"),
    ("Who wrote Hamlet?", Tier.T7B, "short"),
    ("광합성이 뭐야?", Tier.T7B, "short"),
    ("'사필귀정'의 뜻을 알려줘", Tier.T7B, "short"),
    ("세종대왕은 언제 태어났어?", Tier.T7B, "short"),
    # explanations
    ("Explain how photosynthesis works", Tier.T14B, "explain"),
    ("Why is the sky blue?", Tier.T14B, "explain"),
    ("광합성의 원리를 설명해줘", Tier.T14B, "explain"),
    ("'-은'과 '-는'의 차이가 뭐야?", Tier.T14B, "explain"),
    # code
    ("Can you do a code review of my function?", Tier.T14B, "code"),
    ("I have a bug in my loop", Tier.T14B, "code"),
    ("이 코드 리뷰 부탁해", Tier.T14B, "code"),
    # essays
    ("Please critique my essay on climate change", Tier.T34B, "essay"),
    ("이 논술 답안을 첨삭해 주세요", Tier.T34B, "essay"),
    ("자기소개서를 봐 주세요", Tier.T34B, "essay"),
    # reasoning
    ("Prove that the square root of two is irrational", Tier.T34B, "reasoning"),
    ("Solve it step by step please", Tier.T34B, "reasoning"),
    ("피타고라스 정리를 증명해줘", Tier.T34B, "reasoning"),
    ("이 문제의 풀이 과정을 보여줘", Tier.T34B, "reasoning"),
    # general, raised by content
    ("hello there", Tier.T7B, "general"),
    ("오늘 날씨 좋다", Tier.T7B, "general"),
    ("2x + 3 = 7 풀어줘", Tier.T14B, "general"),  # math → 14b
    ("```python\nprint(1)\n```", Tier.T14B, "general"),  # code → 14b
    ("", Tier.T7B, "general"),
]


@pytest.mark.parametrize(("text", "tier", "qtype"), PROMPTS)
def test_prompt_table(text: str, tier: Tier, qtype: str) -> None:
    result = classify(text)
    assert result.tier is tier
    assert result.features["question_type"] == qtype
    assert result.reasons[0].startswith(f"question type {qtype}")


def test_features_are_reported() -> None:
    result = classify("광합성이 뭐야?", multimodal_parts=0, turns=3)
    assert result.features == {
        "tokens": estimate_tokens("광합성이 뭐야?"),
        "language": "ko",
        "question_type": "short",
        "multimodal_parts": 0,
        "turns": 3,
    }


@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("text", ["What is this?", "이 사진은 뭐야?", "hello"])
def test_multimodal_parts_go_to_70b(text: str, parts: int) -> None:
    result = classify(text, multimodal_parts=parts)
    assert result.tier is Tier.T70B
    assert result.features["multimodal_parts"] == parts
    assert any("multimodal" in r for r in result.reasons)


@pytest.mark.parametrize(
    "text",
    [
        # "short" questions (a 7b floor) made long by a pasted text
        "What is the main idea of this text? " + "the weather is nice today and birds sing " * 60,
        "이 글의 주제가 뭐야? " + "오늘은 날씨가 좋고 새들이 노래한다 " * 40,
        # plain long text
        "the weather is nice today and the birds sing " * 60,
        "오늘은 날씨가 좋고 새들이 노래한다 " * 40,
    ],
)
def test_long_prompts_need_at_least_14b(text: str) -> None:
    assert estimate_tokens(text) > 600
    assert classify(text).tier.rank >= Tier.T14B.rank


def test_token_count_is_a_reason_for_a_long_short_question() -> None:
    text = "What is the main idea of this text? " + "the weather is nice today " * 100
    result = classify(text)
    assert result.features["question_type"] == "short"
    assert result.tier is Tier.T14B
    tokens = result.features["tokens"]
    assert f"{tokens} tokens ≥ 600 → 14b" in result.reasons


def test_very_long_prompt_needs_34b() -> None:
    text = "the weather is nice today " * 500  # ~3250 tokens
    assert classify(text).tier is Tier.T34B


def test_long_conversation_needs_34b() -> None:
    assert classify("hello there", turns=8).tier is Tier.T34B
    assert classify("hello there", turns=7).tier is Tier.T7B


@pytest.mark.parametrize(
    ("text", "parts", "zone_min", "zone_max", "expected"),
    [
        ("Please critique my essay", 0, Tier.T7B, Tier.T14B, Tier.T14B),  # 34b clamped down
        ("이 사진은 뭐야?", 2, Tier.T7B, Tier.T14B, Tier.T14B),  # 70b clamped down
        ("What is the capital of France?", 0, Tier.T34B, Tier.T70B, Tier.T34B),  # raised
        ("hello there", 0, Tier.T14B, Tier.T14B, Tier.T14B),
    ],
)
def test_zone_clamp(text: str, parts: int, zone_min: Tier, zone_max: Tier, expected: Tier) -> None:
    result = classify(text, multimodal_parts=parts, zone_min=zone_min, zone_max=zone_max)
    assert result.tier is expected
    clamp = [r for r in result.reasons if "clamp" in r]
    assert clamp == [f"zone policy clamps to {zone_min.value}–{zone_max.value}"]


def test_no_clamp_reason_when_inside_the_zone() -> None:
    result = classify("Explain why", zone_min=Tier.T7B, zone_max=Tier.T34B)
    assert result.tier is Tier.T14B
    assert not any("clamp" in r for r in result.reasons)


@pytest.mark.parametrize(
    "text",
    ["이 논술 답안을 첨삭해 주세요", "What is 2 + 2?", "hello " * 700, "```def f(): pass```"],
)
def test_deterministic(text: str) -> None:
    first = classify(text, multimodal_parts=1, turns=2, zone_max=Tier.T34B)
    second = classify(text, multimodal_parts=1, turns=2, zone_max=Tier.T34B)
    assert first == second


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("안녕하세요, 반갑습니다", "ko"),
        ("Hello, how are you today?", "en"),
        ("これは日本語の文章です", "ja"),  # kana plus kanji
        ("ひらがなだけ", "ja"),
        ("这是一个中文句子", "zh"),
        ("파이썬 list comprehension 설명해줘", "ko"),  # Korean with English terms
        ("", "en"),
        ("12345 !!!", "en"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("hello world " * 100, 250, 350),  # 1200 chars of English ≈ 300 tokens
        ("The quick brown fox jumps over the lazy dog.", 8, 14),
        ("안녕하세요" * 100, 450, 550),  # 500 Hangul syllables ≈ 500 tokens
        ("한국어 문장", 5, 7),
        ("", 0, 0),
    ],
)
def test_estimate_tokens(text: str, low: int, high: int) -> None:
    assert low <= estimate_tokens(text) <= high

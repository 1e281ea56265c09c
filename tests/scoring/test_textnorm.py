"""Per-language normalisation: what counts as the same spoken text."""

from __future__ import annotations

import pytest

from megacity.scoring.textnorm import Boundary, reference_words, spell_number, units


def _texts(segments: list[str], language: str, sep: str = " ") -> list[str]:
    return [u.text for u in units(segments, language, sep)]


@pytest.mark.parametrize(
    ("written", "language", "spoken"),
    [
        ("3", "en", ["three"]),
        ("0", "en", ["zero"]),
        ("13", "en", ["thirteen"]),
        ("21", "en", ["twenty", "one"]),
        ("100", "en", ["one", "hundred"]),
        ("1,000", "en", ["one", "thousand"]),
        ("2024", "en", ["two", "thousand", "twenty", "four"]),
        ("1000000", "en", ["one", "million"]),
        ("3.5", "en", ["three", "point", "five"]),
        ("3rd", "en", ["third"]),
        ("21st", "en", ["twenty", "first"]),
        ("12th", "en", ["twelfth"]),
        ("20th", "en", ["twentieth"]),
        ("50%", "en", ["fifty", "percent"]),
        ("3:00", "en", ["three", "o'clock"]),
        ("3:05", "en", ["three", "oh", "five"]),
        ("10:30", "en", ["ten", "thirty"]),
        ("007", "en", ["zero", "zero", "seven"]),
        ("3", "ko", ["삼"]),
        ("15", "ko", ["십", "오"]),
        ("1,000", "ko", ["천"]),
        ("3", "zh", ["三"]),
        ("10", "zh", ["十"]),
        ("101", "zh", ["一", "百", "零", "一"]),
        ("2024", "zh", ["二", "千", "零", "二", "十", "四"]),
        ("50%", "zh", ["百", "分", "之", "五", "十"]),
        ("3", "ja", ["三"]),
        ("100", "ja", ["百"]),
        ("101", "ja", ["百", "一"]),
        ("10000", "ja", ["一", "万"]),
    ],
)
def test_spell_number(written: str, language: str, spoken: list[str]) -> None:
    assert spell_number(written, language) == spoken


def test_spell_number_reads_very_long_runs_digit_by_digit() -> None:
    assert spell_number("12345678901234567", "en")[:3] == ["one", "two", "three"]
    assert len(spell_number("12345678901234567", "ko")) == 17


def test_spell_number_rejects_non_numbers() -> None:
    with pytest.raises(ValueError):
        spell_number("three", "en")


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        # Case, punctuation, full-width letters, curly apostrophes.
        ("The QUICK, brown fox!", "en", ["the", "quick", "brown", "fox"]),
        ("Ｔｈｅ　ｆｏｘ", "en", ["the", "fox"]),
        ("It’s three o’clock", "en", ["it's", "three", "o'clock"]),
        ("twenty-one", "en", ["twenty", "one"]),
        ("at 3 o'clock", "en", ["at", "three", "o'clock"]),
        # Korean: syllables, spacing ignored, Sino-Korean or native numbers by counter.
        ("정말 좋네요.", "ko", ["정", "말", "좋", "네", "요"]),
        ("정말좋네요", "ko", ["정", "말", "좋", "네", "요"]),
        ("3시", "ko", ["세", "시"]),
        ("3 시간", "ko", ["세", "시", "간"]),
        ("사과 2개", "ko", ["사", "과", "두", "개"]),
        ("20살", "ko", ["스", "무", "살"]),
        ("3개월", "ko", ["삼", "개", "월"]),
        ("3월", "ko", ["삼", "월"]),
        ("K-POP 좋아", "ko", ["k", "pop", "좋", "아"]),
        # Japanese: katakana folded to hiragana, half-width kana widened, small kana joined.
        ("カフェ", "ja", ["か", "ふぇ"]),
        ("ｶﾌｪ", "ja", ["か", "ふぇ"]),
        ("しょう", "ja", ["しょ", "う"]),
        ("３時。", "ja", ["三", "時"]),
        # Chinese: characters, full-width punctuation dropped, Latin runs kept whole.
        ("我喜欢iPhone，你呢？", "zh", ["我", "喜", "欢", "iphone", "你", "呢"]),
    ],
)
def test_units(text: str, language: str, expected: list[str]) -> None:
    assert _texts(text.split(), language) == expected


def test_units_keep_their_origin_segment_and_token() -> None:
    heard = units([" twenty-one", " 23", " apples"], "en", sep="")
    assert [(u.text, u.origin, u.token) for u in heard] == [
        ("twenty", 0, 0),
        ("one", 0, 1),
        ("twenty", 1, 2),
        ("three", 1, 2),
        ("apples", 2, 3),
    ]


def test_units_of_decomposed_hangul_are_composed() -> None:
    nfd = "\u1100\u1161\u1102\u1161"  # 가나 as conjoining jamo (macOS input)
    assert _texts([nfd], "ko") == ["가", "나"]


def test_reference_words_korean_are_eojeol_with_boundaries() -> None:
    words = reference_words("안녕하세요. 오늘 날씨가 정말 좋네요.", "ko")
    assert [w.text for w in words] == ["안녕하세요", "오늘", "날씨가", "정말", "좋네요"]
    assert words[0].units == ("안", "녕", "하", "세", "요")
    assert [w.boundary_after for w in words] == [
        Boundary.SENTENCE,
        Boundary.NONE,
        Boundary.NONE,
        Boundary.NONE,
        Boundary.SENTENCE,
    ]


def test_reference_words_english_keep_written_form() -> None:
    words = reference_words("Please meet me next Tuesday at 3 o'clock, OK?", "en")
    assert [w.text for w in words] == [
        "Please",
        "meet",
        "me",
        "next",
        "Tuesday",
        "at",
        "3",
        "o'clock",
        "OK",
    ]
    assert words[6].units == ("three",)
    assert words[7].boundary_after == Boundary.PHRASE
    assert words[8].boundary_after == Boundary.SENTENCE


def test_reference_words_line_breaks_are_phrase_boundaries() -> None:
    words = reference_words("Let it go\nlet it go", "en")
    assert words[2].boundary_after == Boundary.PHRASE


def test_reference_words_japanese_are_characters() -> None:
    words = reference_words("今日は、カフェで。", "ja")
    assert [w.text for w in words] == ["今", "日", "は", "カ", "フェ", "で"]
    assert words[2].boundary_after == Boundary.PHRASE
    assert words[4].units == ("ふぇ",)


def test_reference_words_of_punctuation_only_is_empty() -> None:
    assert reference_words("...!?", "en") == []


def test_unknown_language_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        units(["hello"], "fr")
    with pytest.raises(ValueError, match="unsupported language"):
        reference_words("hello", "de")

"""Written and spoken forms of the same words compare equal, both ways round."""

from __future__ import annotations

import pytest

from megacity.scoring.pronunciation import assess
from megacity.scoring.spoken_forms import abbreviation, english_year, korean_readings
from megacity.scoring.textnorm import spell_number

SAME = [
    ("en", "and mister john dashwood had then leisure", "And Mr. John Dashwood had then leisure"),
    ("en", "doctor kim will see you", "Dr. Kim will see you"),
    ("en", "missus brown and miz green", "Mrs. Brown and Ms. Green"),
    ("en", "we went to saint louis", "We went to St. Louis"),
    ("en", "she lives on main street now", "She lives on Main St. now"),
    ("en", "fifty percent of them", "50% of them"),
    ("en", "in the twenty first century", "in the 21st century"),
    ("en", "the third day", "the 3rd day"),
    ("en", "born in nineteen ninety nine", "born in 1999"),
    ("en", "born in two thousand four", "born in 2004"),
    ("en", "since nineteen hundred", "since 1900"),
    ("en", "room number five", "room No. 5"),
    ("en", "apples pears et cetera", "apples, pears, etc."),
    ("ko", "세 시에 만나요", "3시에 만나요"),
    ("ko", "스무 살이에요", "20살이에요"),
    ("ko", "삼 개월 동안", "3개월 동안"),
    ("ko", "유월에 가요", "6월에 가요"),
    ("ko", "시월 삼일", "10월 3일"),
    ("ko", "하나 둘 셋", "1 2 3"),
    ("ko", "이십 년 전에", "20년 전에"),
    ("ko", "두 달 만에", "2달 만에"),
    ("ko", "사과 다섯 개", "사과 5개"),
    ("ko", "열두 명이 왔어요", "12명이 왔어요"),
]


@pytest.mark.parametrize(("language", "spoken", "written"), SAME)
def test_written_and_spoken_forms_compare_equal(language: str, spoken: str, written: str) -> None:
    for reference, heard in ((spoken, written), (written, spoken)):
        result = assess(reference, heard, language)
        assert all(w.error_type == "none" for w in result.words), (reference, heard, result.words)
        assert result.scores.accuracy == 100 and result.wer == 0


def test_a_different_word_is_still_an_error() -> None:
    result = assess("mister smith", "Dr. Smith", "en")
    assert result.words[0].error_type != "none"
    assert assess("세 시에 만나요", "4시에 만나요", "ko").scores.accuracy < 100
    assert assess("born in nineteen ninety nine", "born in 1998", "en").wer > 0


def test_the_rules_themselves() -> None:
    assert abbreviation("Mr", ". Kim") == ("mister",)
    assert abbreviation("St", ". Louis") == ("saint",) and abbreviation("St", ". in") == ("street",)
    assert abbreviation("no", ".") is None and abbreviation("MS", " word") is None
    assert korean_readings(3, "시") == ["세", "삼"] and korean_readings(3, "") == ["삼", "셋"]
    assert korean_readings(6, "월") == ["유", "육"]

    def say(n: int) -> list[str]:
        return spell_number(str(n), "en")

    assert english_year(1999, say) == ["nineteen", "ninety", "nine"]
    assert english_year(1905, say) == ["nineteen", "oh", "five"]
    assert english_year(2004, say) is None and english_year(999, say) is None

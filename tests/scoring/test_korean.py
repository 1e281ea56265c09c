"""Hangul decomposition, jamo comparison and Korean number readings."""

from __future__ import annotations

import numpy as np
import pytest

from megacity.scoring.korean import (
    Jamo,
    JamoDifference,
    compare_syllables,
    compose,
    decompose,
    is_syllable,
    jamo_similarity,
    native_korean,
    sino_korean,
    to_jamo,
)


@pytest.mark.parametrize(
    ("syllable", "jamo"),
    [
        ("가", Jamo("ㄱ", "ㅏ", "")),
        ("좋", Jamo("ㅈ", "ㅗ", "ㅎ")),
        ("존", Jamo("ㅈ", "ㅗ", "ㄴ")),
        ("닭", Jamo("ㄷ", "ㅏ", "ㄺ")),
        ("힣", Jamo("ㅎ", "ㅣ", "ㅎ")),
        ("뷁", Jamo("ㅂ", "ㅞ", "ㄺ")),
    ],
)
def test_decompose_known_syllables(syllable: str, jamo: Jamo) -> None:
    assert decompose(syllable) == jamo
    assert compose(*jamo.slots()) == syllable


def test_every_syllable_round_trips() -> None:
    for code in range(0xAC00, 0xD7A4):
        syllable = chr(code)
        assert compose(*decompose(syllable).slots()) == syllable


@pytest.mark.parametrize("text", ["a", "ㄱ", "", "가나", "。"])
def test_decompose_rejects_non_syllables(text: str) -> None:
    assert not is_syllable(text)
    with pytest.raises(ValueError):
        decompose(text)


def test_compose_rejects_invalid_jamo() -> None:
    with pytest.raises(ValueError):
        compose("ㅏ", "ㄱ")


def test_to_jamo_spells_out_syllables_and_keeps_the_rest() -> None:
    assert to_jamo("좋네요!") == "ㅈㅗㅎㄴㅔㅇㅛ!"


@pytest.mark.parametrize(
    ("expected", "got", "similarity", "differences"),
    [
        ("좋", "좋", 1.0, ()),
        ("좋", "존", 2 / 3, (JamoDifference("jongseong", "ㅎ", "ㄴ"),)),
        ("커", "거", 1 / 2, (JamoDifference("choseong", "ㅋ", "ㄱ"),)),
        ("네", "내", 1 / 2, (JamoDifference("jungseong", "ㅔ", "ㅐ"),)),
        ("가", "각", 2 / 3, (JamoDifference("jongseong", "", "ㄱ"),)),
        (
            "좋",
            "전",
            1 / 3,
            (JamoDifference("jungseong", "ㅗ", "ㅓ"), JamoDifference("jongseong", "ㅎ", "ㄴ")),
        ),
        (
            "커",
            "우",
            0.0,
            (JamoDifference("choseong", "ㅋ", "ㅇ"), JamoDifference("jungseong", "ㅓ", "ㅜ")),
        ),
        ("가", "a", 0.0, ()),
    ],
)
def test_compare_syllables(
    expected: str, got: str, similarity: float, differences: tuple[JamoDifference, ...]
) -> None:
    score, diffs = compare_syllables(expected, got)
    assert score == pytest.approx(similarity)
    assert diffs == differences


def test_jamo_similarity_matrix_matches_pairwise_comparison() -> None:
    ref = ["좋", "네", "요", "pop"]
    hyp = ["존", "내", "요", "pap", "가"]
    matrix = jamo_similarity(ref, hyp)
    assert matrix.shape == (4, 5)
    for i, r in enumerate(ref[:3]):
        for j, h in enumerate(hyp):
            if h != "pap":
                assert matrix[i, j] == pytest.approx(compare_syllables(r, h)[0])
    # Latin runs inside Korean text are compared letter by letter.
    assert matrix[3, 3] == pytest.approx(2 / 3)
    assert matrix[3, 4] == 0.0
    assert np.all((matrix >= 0) & (matrix <= 1))


@pytest.mark.parametrize(
    ("n", "reading"),
    [
        (0, "영"),
        (1, "일"),
        (3, "삼"),
        (10, "십"),
        (11, "십일"),
        (20, "이십"),
        (99, "구십구"),
        (100, "백"),
        (101, "백일"),
        (1000, "천"),
        (2024, "이천이십사"),
        (10000, "만"),
        (12345, "만이천삼백사십오"),
        (100000000, "일억"),
        (110000000, "일억천만"),
    ],
)
def test_sino_korean(n: int, reading: str) -> None:
    assert sino_korean(n) == reading


@pytest.mark.parametrize(
    ("n", "plain", "before_counter"),
    [
        (1, "하나", "한"),
        (2, "둘", "두"),
        (3, "셋", "세"),
        (4, "넷", "네"),
        (5, "다섯", "다섯"),
        (10, "열", "열"),
        (20, "스물", "스무"),
        (21, "스물하나", "스물한"),
        (99, "아흔아홉", "아흔아홉"),
    ],
)
def test_native_korean(n: int, plain: str, before_counter: str) -> None:
    assert native_korean(n) == plain
    assert native_korean(n, before_counter=True) == before_counter


@pytest.mark.parametrize("n", [0, 100, -1])
def test_native_korean_out_of_range(n: int) -> None:
    with pytest.raises(ValueError):
        native_korean(n)


def test_sino_korean_out_of_range() -> None:
    with pytest.raises(ValueError):
        sino_korean(-1)
    with pytest.raises(ValueError):
        sino_korean(10**20)

"""Edit-distance alignment with backtrace, and grouping pairs by reference word."""

from __future__ import annotations

import random

import pytest

from megacity.scoring import alignment
from megacity.scoring.alignment import Pair, align, char_similarity, group_by_word
from megacity.scoring.korean import jamo_similarity


def _ops(pairs: list[Pair]) -> list[tuple[str, int | None, int | None]]:
    return [(p.op, p.ref, p.hyp) for p in pairs]


def _check_complete(pairs: list[Pair], n_ref: int, n_hyp: int) -> None:
    """Every index of both sides appears exactly once, in increasing order."""
    assert [p.ref for p in pairs if p.ref is not None] == list(range(n_ref))
    assert [p.hyp for p in pairs if p.hyp is not None] == list(range(n_hyp))


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("a b c", "a b c", [("equal", 0, 0), ("equal", 1, 1), ("equal", 2, 2)]),
        ("a b c", "a c", [("equal", 0, 0), ("delete", 1, None), ("equal", 2, 1)]),
        ("a b", "a x b", [("equal", 0, 0), ("insert", None, 1), ("equal", 1, 2)]),
        ("the fox ran", "the box ran", [("equal", 0, 0), ("substitute", 1, 1), ("equal", 2, 2)]),
        # Nothing shared: an omission then an insertion, not a substitution.
        (
            "the dog ran",
            "the cat ran",
            [("equal", 0, 0), ("delete", 1, None), ("insert", None, 1), ("equal", 2, 2)],
        ),
        ("", "a b", [("insert", None, 0), ("insert", None, 1)]),
        ("a b", "", [("delete", 0, None), ("delete", 1, None)]),
    ],
)
def test_align_word_sequences(
    ref: str, hyp: str, expected: list[tuple[str, int | None, int | None]]
) -> None:
    pairs = align(ref.split(), hyp.split())
    assert _ops(pairs) == expected
    _check_complete(pairs, len(ref.split()), len(hyp.split()))


def test_substitution_carries_letter_similarity() -> None:
    (pair,) = [p for p in align(["fox"], ["box"]) if p.op == "substitute"]
    assert pair.similarity == pytest.approx(2 / 3)


def test_mispronounced_word_pairs_with_the_word_it_resembles() -> None:
    # Unit costs would pair "brown" with "box"; similarity pairs "fox" with it.
    pairs = align(["quick", "brown", "fox", "jumps"], ["quick", "box", "jumps"])
    assert _ops(pairs) == [
        ("equal", 0, 0),
        ("delete", 1, None),
        ("substitute", 2, 1),
        ("equal", 3, 2),
    ]


def test_min_similarity_turns_weak_matches_into_omission_and_insertion() -> None:
    assert _ops(align(["fox"], ["dog"])) == [("substitute", 0, 0)]
    assert _ops(align(["fox"], ["dog"], min_similarity=0.5)) == [
        ("delete", 0, None),
        ("insert", None, 0),
    ]


def test_reordered_words_are_not_matched_twice() -> None:
    ref = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    hyp = ["the", "lazy", "dog", "jumps", "over", "the", "quick", "brown", "fox"]
    pairs = align(ref, hyp, min_similarity=0.5)
    _check_complete(pairs, len(ref), len(hyp))
    equal = sum(1 for p in pairs if p.op == "equal")
    assert equal == 4  # the, jumps, over, the: the rest costs omissions and insertions
    assert sum(1 for p in pairs if p.op == "delete") == 5


def test_korean_syllables_align_by_jamo() -> None:
    pairs = align(list("정말좋네요"), list("정말존네네요"), jamo_similarity)
    assert _ops(pairs) == [
        ("equal", 0, 0),
        ("equal", 1, 1),
        ("substitute", 2, 2),
        ("insert", None, 3),
        ("equal", 3, 4),
        ("equal", 4, 5),
    ]
    assert pairs[2].similarity == pytest.approx(2 / 3)


def test_random_sequences_are_aligned_completely() -> None:
    rng = random.Random(7)
    alphabet = ["ab", "ac", "bc", "x", "y", "abc"]
    for _ in range(200):
        ref = [rng.choice(alphabet) for _ in range(rng.randint(0, 12))]
        hyp = [rng.choice(alphabet) for _ in range(rng.randint(0, 12))]
        pairs = align(ref, hyp, min_similarity=0.3)
        _check_complete(pairs, len(ref), len(hyp))
        for pair in pairs:
            if pair.op == "equal":
                assert ref[pair.ref or 0] == hyp[pair.hyp or 0]
            if pair.op == "substitute":
                assert pair.similarity >= 0.3


def test_huge_stretches_fall_back_to_pairing_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alignment, "MAX_DP_CELLS", 4)
    pairs = align(["fox", "cat", "owl"], ["box", "dog"], min_similarity=0.5)
    assert _ops(pairs) == [
        ("substitute", 0, 0),
        ("delete", 1, None),
        ("insert", None, 1),
        ("delete", 2, None),
    ]


def test_char_similarity_is_normalised_levenshtein() -> None:
    matrix = char_similarity(["quick", "a"], ["quack", "a", "b"])
    assert matrix[0, 0] == pytest.approx(0.8)
    assert matrix[1, 1] == 1.0
    assert matrix[1, 2] == 0.0


def test_group_by_word_inner_insertion_belongs_to_the_word() -> None:
    # Reference words: 정말 (units 0-1), 좋네요 (units 2-4); heard 정말 / 좋네네요.
    pairs = align(list("정말좋네요"), list("정말좋네네요"), jamo_similarity)
    groups = group_by_word(pairs, [0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1])
    assert [g.word for g in groups] == [0, 1]
    assert [p.op for p in groups[1].pairs].count("insert") == 1


def test_group_by_word_boundary_insertions_are_grouped_per_heard_word() -> None:
    # Reference 정말 좋네요; heard 정말 아주 진짜 좋네요: two inserted words between.
    ref, hyp = list("정말좋네요"), list("정말아주진짜좋네요")
    pairs = align(ref, hyp, jamo_similarity)
    groups = group_by_word(pairs, [0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2, 3, 3, 3])
    assert [g.word for g in groups] == [0, None, None, 1]
    assert [[p.hyp for p in g.pairs] for g in groups[1:3]] == [[2, 3], [4, 5]]


def test_group_by_word_insertion_next_to_a_word_from_the_same_heard_word_joins_it() -> None:
    # Reference 커피를 마셔요; heard 커피만 마셔요: 만 replaces 를 inside one spoken word.
    pairs = align(list("커피를마셔요"), list("커피만마셔요"), jamo_similarity, 0.3)
    assert ("delete", 2, None) in _ops(pairs)
    groups = group_by_word(pairs, [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1])
    assert [g.word for g in groups] == [0, 1]
    # Heard as a separate word, the same syllable is an insertion of its own.
    groups = group_by_word(pairs, [0, 0, 0, 1, 1, 1], [0, 0, 1, 2, 2, 2])
    assert [g.word for g in groups] == [0, None, 1]

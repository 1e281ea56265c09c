"""normalize.any_of: one regex that answers `any(stem in text for stem in stems)`."""

from __future__ import annotations

import random

import pytest

from megacity.safety.normalize import any_of


@pytest.mark.parametrize(
    ("stems", "text", "found"),
    [
        (("ignor", "instruct"), "please ignore that", True),
        (("ignor", "instruct"), "what is a noun?", False),
        (("ab", "abc"), "xxabxx", True),  # a stem that starts another is enough alone
        (("abc",), "xxabxx", False),
        (("f*", "h*t", "(.)"), "f*ck", True),  # regex characters are literal
        (("f*",), "fff", False),
        (("시발", "ㅅㅂ"), "이거 ㅅㅂ 뭐야", True),
        ((), "anything", False),
        (("",), "anything", True),  # as `"" in text` is
    ],
)
def test_any_of_finds_a_stem_exactly_when_one_occurs(
    stems: tuple[str, ...], text: str, found: bool
) -> None:
    assert (any_of(stems).search(text) is not None) is found
    assert any(stem in text for stem in stems) is found


def test_any_of_agrees_with_testing_each_stem() -> None:
    rng = random.Random(7)
    alphabet = "ab*.?(c 가"
    for _ in range(2000):
        stems = [
            "".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(rng.randint(0, 6))
        ]
        pattern = any_of(stems)
        for _ in range(5):
            text = "".join(rng.choices(alphabet, k=rng.randint(0, 12)))
            assert (pattern.search(text) is not None) == any(s in text for s in stems)

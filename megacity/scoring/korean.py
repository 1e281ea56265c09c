"""Hangul syllables and their jamo, decomposed arithmetically, plus Korean number readings.

A precomposed syllable U+AC00..U+D7A3 encodes (choseong, jungseong, jongseong) as
``0xAC00 + (cho * 21 + jung) * 28 + jong``, so no lookup table or library is needed.
Jamo are reported as compatibility jamo (ㄱ, ㅏ …), the form learners read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

SYLLABLE_FIRST = 0xAC00
SYLLABLE_LAST = 0xD7A3
_JUNG_COUNT = 21
_JONG_COUNT = 28
_PER_CHO = _JUNG_COUNT * _JONG_COUNT

CHOSEONG = tuple("ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ")
JUNGSEONG = tuple("ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ")
JONGSEONG = ("", *"ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ")
POSITIONS = ("choseong", "jungseong", "jongseong")


@dataclass(frozen=True, slots=True)
class Jamo:
    """The three slots of one syllable; ``jongseong`` is "" when there is no final consonant."""

    choseong: str
    jungseong: str
    jongseong: str

    def slots(self) -> tuple[str, str, str]:
        """The slots in POSITIONS order."""
        return (self.choseong, self.jungseong, self.jongseong)


@dataclass(frozen=True, slots=True)
class JamoDifference:
    """One jamo slot that differs between the expected and the recognised syllable.

    ``expected`` and ``got`` are compatibility jamo; "" is an absent 종성 (final consonant).
    """

    position: str
    expected: str
    got: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"position": self.position, "expected": self.expected, "got": self.got}


def is_syllable(char: str) -> bool:
    """True for one precomposed Hangul syllable (가..힣)."""
    return len(char) == 1 and SYLLABLE_FIRST <= ord(char) <= SYLLABLE_LAST


def decompose(syllable: str) -> Jamo:
    """Split one Hangul syllable into its jamo; ValueError for anything else."""
    if not is_syllable(syllable):
        raise ValueError(f"not a Hangul syllable: {syllable!r}")
    cho, rest = divmod(ord(syllable) - SYLLABLE_FIRST, _PER_CHO)
    jung, jong = divmod(rest, _JONG_COUNT)
    return Jamo(CHOSEONG[cho], JUNGSEONG[jung], JONGSEONG[jong])


def compose(choseong: str, jungseong: str, jongseong: str = "") -> str:
    """Build one Hangul syllable from compatibility jamo; ValueError for an invalid slot."""
    try:
        cho = CHOSEONG.index(choseong)
        jung = JUNGSEONG.index(jungseong)
        jong = JONGSEONG.index(jongseong)
    except ValueError as exc:
        raise ValueError(f"invalid jamo: {choseong!r} {jungseong!r} {jongseong!r}") from exc
    return chr(SYLLABLE_FIRST + cho * _PER_CHO + jung * _JONG_COUNT + jong)


def to_jamo(text: str) -> str:
    """Spell text out as compatibility jamo; characters that are not syllables pass through."""
    return "".join("".join(decompose(c).slots()) if is_syllable(c) else c for c in text)


def compare_syllables(expected: str, got: str) -> tuple[float, tuple[JamoDifference, ...]]:
    """Similarity 0..1 of two syllables and the jamo slots that differ.

    Similarity is equal jamo / jamo present: 좋/존 → 2/3; 커/거 → 1/2 (an empty 종성 on both
    sides is not a match, or every pair of open syllables would start a third alike).
    """
    if expected == got:
        return 1.0, ()
    if not (is_syllable(expected) and is_syllable(got)):
        return 0.0, ()
    exp_slots = decompose(expected).slots()
    got_slots = decompose(got).slots()
    differences = tuple(
        JamoDifference(position, e, g)
        for position, e, g in zip(POSITIONS, exp_slots, got_slots, strict=True)
        if e != g
    )
    present = 3 if exp_slots[2] or got_slots[2] else 2
    return (present - len(differences)) / present, differences


def _slot_codes(units: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: (is it a syllable, its three slot indices); non-syllables get -1 slots."""
    codes = np.array([ord(u) if len(u) == 1 else 0 for u in units], dtype=np.int64)
    hangul = (codes >= SYLLABLE_FIRST) & (codes <= SYLLABLE_LAST)
    offset = np.where(hangul, codes - SYLLABLE_FIRST, 0)
    slots = np.stack([offset // _PER_CHO, offset % _PER_CHO // _JONG_COUNT, offset % _JONG_COUNT])
    return hangul, np.where(hangul, slots, -1)


def jamo_similarity(ref: Sequence[str], hyp: Sequence[str]) -> np.ndarray:
    """Similarity matrix 0..1 (len(ref) x len(hyp)): jamo slots for syllables, letters otherwise."""
    # Latin runs inside Korean text ("K-POP") are compared letter by letter.
    sim = cdist(list(ref), list(hyp), scorer=Levenshtein.normalized_similarity, dtype=np.float64)
    ref_hangul, ref_slots = _slot_codes(ref)
    hyp_hangul, hyp_slots = _slot_codes(hyp)
    equal = (ref_slots[:, :, None] == hyp_slots[:, None, :]).sum(axis=0)
    # Slot 2 is 종성; index 0 there means "none", which only counts when one side has one.
    no_final = (ref_slots[2][:, None] == 0) & (hyp_slots[2][None, :] == 0)
    syllable_sim = (equal - no_final) / np.where(no_final, 2.0, 3.0)
    both = ref_hangul[:, None] & hyp_hangul[None, :]
    return np.where(both, syllable_sim, sim)


_SINO_DIGITS = "영일이삼사오육칠팔구"
_SINO_SMALL = ((1000, "천"), (100, "백"), (10, "십"))
_SINO_BIG = ("", "만", "억", "조", "경")
_NATIVE_ONES = ("", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_ONES_BEFORE_COUNTER = ("", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_TENS = ("", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔")
SINO_KOREAN_MAX = 10**20 - 1
NATIVE_KOREAN_MAX = 99


def _sino_group(n: int) -> str:
    """Reading of 1..9999; a leading 일 is dropped before 십/백/천 (십, not 일십)."""
    parts = []
    for value, unit in _SINO_SMALL:
        digit = n // value % 10
        if digit:
            parts.append(("" if digit == 1 else _SINO_DIGITS[digit]) + unit)
    if n % 10:
        parts.append(_SINO_DIGITS[n % 10])
    return "".join(parts)


def sino_korean(n: int) -> str:
    """Sino-Korean reading of 0..SINO_KOREAN_MAX (3 → 삼, 10000 → 만), spaces omitted."""
    if not 0 <= n <= SINO_KOREAN_MAX:
        raise ValueError(f"out of range for a Sino-Korean reading: {n}")
    if n == 0:
        return _SINO_DIGITS[0]
    parts = []
    for power, big in enumerate(_SINO_BIG):
        group = n // 10000**power % 10000
        if group:
            # Korean says 만 for 10000 but 일억 for 10^8.
            head = "" if group == 1 and power == 1 else _sino_group(group)
            parts.append(head + big)
    return "".join(reversed(parts))


def native_korean(n: int, before_counter: bool = False) -> str:
    """Native Korean reading of 1..99 (3 → 셋, or 세 before a counter such as 시 or 개)."""
    if not 1 <= n <= NATIVE_KOREAN_MAX:
        raise ValueError(f"out of range for a native Korean reading: {n}")
    tens, ones = divmod(n, 10)
    if before_counter and n == 20:
        return "스무"
    ones_words = _NATIVE_ONES_BEFORE_COUNTER if before_counter else _NATIVE_ONES
    return _NATIVE_TENS[tens] + ones_words[ones]

"""Written forms that are said another way: abbreviations, and numbers with more than one
reading, so that "Mr." heard where the reference says "mister" compares equal.

* English abbreviations (``ABBREVIATIONS``): Mr. → mister, Dr. → doctor, Mrs. → missus,
  etc. → et cetera, …; "St." is "saint" before a name (St. Louis) and "street" after
  one (Main St.).
* Numbers with two readings: a Korean number is Sino-Korean (삼, 이십) or native (셋, 세,
  스물) depending on what follows, and a learner's recogniser may write either as digits;
  an English year is "nineteen ninety nine" or "one thousand nine hundred ninety nine".
  When the reference text is known, the reading found in it wins (``choose``); the
  default reading otherwise (native before a native counter, Sino-Korean elsewhere).
* Korean months whose readings are irregular: 6월 → 유월, 10월 → 시월.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .korean import NATIVE_KOREAN_MAX, native_korean, sino_korean

# Abbreviation → spoken words; those in _NEED_PERIOD only with their period ("Ms." not "MS").
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "mr": ("mister",), "mrs": ("missus",), "ms": ("miz",), "dr": ("doctor",),
    "prof": ("professor",), "jr": ("junior",), "sr": ("senior",), "vs": ("versus",),
    "etc": ("et", "cetera"), "mt": ("mount",), "ave": ("avenue",), "no": ("number",),
}  # fmt: skip
_NEED_PERIOD = frozenset({"ms", "mt", "ave", "no"})
_NO_BEFORE_DIGIT = "no"  # "No. 5" is "number five"; "no." at a sentence end is "no"


def abbreviation(word: str, following: str) -> tuple[str, ...] | None:
    """Spoken words of an English abbreviation, given the text that follows it (or None)."""
    key = word.casefold()
    period = following.startswith(".")
    rest = following[1:].lstrip() if period else following.lstrip()
    if key == "st" and period:
        return ("saint",) if rest[:1].isupper() else ("street",)
    if key not in ABBREVIATIONS or (key in _NEED_PERIOD and not period):
        return None
    if key == _NO_BEFORE_DIGIT and not rest[:1].isdigit():
        return None
    return ABBREVIATIONS[key]


_IRREGULAR_MONTHS = {6: "유", 10: "시"}  # before 월: 유월, 시월


def korean_readings(n: int, counter: str) -> list[str]:
    """Readings of a Korean number before ``counter`` (may be ""): the default first."""
    if counter.startswith("월") and n in _IRREGULAR_MONTHS:
        return [_IRREGULAR_MONTHS[n], sino_korean(n)]
    native_ok = 1 <= n <= NATIVE_KOREAN_MAX
    if counter and native_ok and counter_is_native(counter):
        return [native_korean(n, before_counter=True), sino_korean(n)]
    readings = [sino_korean(n)]
    if native_ok:
        readings += [native_korean(n, before_counter=bool(counter)), native_korean(n)]
    return list(dict.fromkeys(readings))


# Counters read with native numbers (세 시, 두 개, 스무 살); 개월 is Sino-Korean.
NATIVE_COUNTERS = ("시간", "시", "개", "명", "살", "마리", "잔", "권", "병", "그릇", "대", "장",
                   "달", "번", "가지", "군데", "벌", "켤레", "송이", "채", "곳", "사람")  # fmt: skip
SINO_COUNTERS = ("개월", "년", "월", "일", "분", "초", "원", "층", "호", "주", "학년")


def counter_is_native(following: str) -> bool:
    """Whether the Hangul after a number starts with a counter read with native numbers."""
    if following.startswith(SINO_COUNTERS):
        return False
    return following.startswith(NATIVE_COUNTERS)


def english_year(n: int, say: Callable[[int], list[str]]) -> list[str] | None:
    """A year said in pairs (1999 → nineteen ninety nine, 1900 → nineteen hundred), or None;
    ``say`` spells a number below 100 in English words."""
    if not 1100 <= n <= 2099 or (n >= 2000 and n % 1000 < 10):
        return None  # 2000-2009 are said "two thousand (and) five"
    head, tail = divmod(n, 100)
    if tail == 0:
        return [*say(head), "hundred"]
    return [*say(head), *(["oh"] if tail < 10 else []), *say(tail)]


def choose(candidates: Sequence[list[str]], reference: str | None, joiner: str) -> list[str]:
    """The candidate reading found in the reference text (units joined), else the first."""
    if reference:
        for reading in candidates:
            if joiner.join(reading) in reference:
                return reading
    return list(candidates[0])

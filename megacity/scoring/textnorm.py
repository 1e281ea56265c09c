"""Per-language text normalisation: what counts as the same spoken text.

Both the reference and the recognised text go through the same steps, so anything
that differs only in writing, not in speech, compares equal:

* NFKC (full-width ↔ half-width, composed Hangul, half-width katakana), curly quotes
  folded, letters case-folded, punctuation and symbols dropped;
* digits spelled out in the language: English "3" → "three", "3rd" → "third",
  "3:05" → "three oh five", "3:00" → "three o'clock"; Korean Sino-Korean (3 → 삼,
  1,000 → 천) and native numbers before a counter (3시 → 세시, 2개 → 두개); Chinese and
  Japanese numerals (3 → 三, 100 → 一百 / 百); leading zeros or very long runs digit by digit;
* Japanese katakana folded to hiragana (the script chosen is spelling, not pronunciation).

Comparison units: English words; one syllable (Korean) or one character (Japanese,
Chinese) otherwise, with runs of Latin letters as one unit. Korean is compared
syllable by syllable across spaces, so spacing errors (정말좋네요 / 정말 좋네요) cost nothing.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from . import spoken_forms
from .korean import native_korean, sino_korean
from .languages import LANGUAGES

_HAN_KANA = (
    "\u3005\u3006\u3041-\u309f\u30a0-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
)
# A small kana belongs to the kana before it: しょ, ふぇ are one mora, one unit.
_SMALL_KANA = "ぁぃぅぇぉゃゅょゎゕゖァィゥェォャュョヮヵヶ"
_TOKEN = re.compile(
    r"(?P<num>\d+(?:[.,:]\d+)*(?:st|nd|rd|th|%)?)"
    r"|(?P<hangul>[\uac00-\ud7a3])"
    rf"|(?P<cjk>[{_HAN_KANA}][{_SMALL_KANA}]*)"
    rf"|(?P<word>[^\W\d_\uac00-\ud7a3{_HAN_KANA}]+(?:'[^\W\d_\uac00-\ud7a3{_HAN_KANA}]+)*)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(\d+(?:[.,:]\d+)*)(st|nd|rd|th|%)?", re.IGNORECASE)
_QUOTES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "“": '"', "”": '"'})
_SENTENCE_MARKS = frozenset(".!?。…")
_PHRASE_MARKS = frozenset(",;:、，；：—–\n")
_DIGITWISE_FROM = 16  # digits; longer runs (phone, card numbers) are read digit by digit


class Boundary(IntEnum):
    """What separates a reference word from the next one: decides which pauses are expected."""

    NONE = 0
    PHRASE = 1
    SENTENCE = 2


@dataclass(frozen=True, slots=True)
class Unit:
    """One comparison unit of recognised text, with where it came from."""

    text: str
    origin: int  # index of the segment (Whisper word or space-separated piece) it came from
    token: int  # index of the written token (a number's spelled-out words share one)


@dataclass(frozen=True, slots=True)
class RefWord:
    """One reference word: as written (punctuation stripped) and its comparison units."""

    text: str
    units: tuple[str, ...]
    boundary_after: Boundary


class _Token(NamedTuple):
    kind: str  # num | hangul | cjk | word
    text: str
    start: int
    end: int
    origin: int


def check_language(language: str) -> None:
    """Raise ValueError unless language is one of LANGUAGES."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")


def normalize(text: str) -> str:
    """NFKC with quotes folded; case and punctuation are kept (tokenising drops them)."""
    return unicodedata.normalize("NFKC", text).translate(_QUOTES)


def units(
    segments: Sequence[str],
    language: str,
    sep: str = " ",
    reference: Sequence[str] | None = None,
) -> list[Unit]:
    """Comparison units of recognised text given as segments joined by sep (Whisper words: "").

    With the ``reference`` units, a number with several readings (Korean Sino-Korean or
    native, an English year) is read the way the reference says it (``spoken_forms``).
    """
    check_language(language)
    said = _joined(reference, language)
    normed = [normalize(s) for s in segments]
    starts, offset = [], 0
    for seg in normed:
        starts.append(offset)
        offset += len(seg) + len(sep)
    flat = sep.join(normed)
    tokens = _scan(flat, starts)
    spelled = _spell_tokens(tokens, language, flat, said)
    return [
        Unit(text, tok.origin, index)
        for index, (tok, texts) in enumerate(zip(tokens, spelled, strict=True))
        for text in texts
    ]


def reference_words(text: str, language: str, heard: Sequence[str] | None = None) -> list[RefWord]:
    """Split a reference text into scored words: space-separated for ko, tokens otherwise.

    With the ``heard`` units, a written number with several readings is read the way the
    learner said it (the reference "1999" heard as "nineteen ninety nine").
    """
    check_language(language)
    flat = normalize(text)
    tokens = _scan(flat, [m.start() for m in re.finditer(r"\S+", flat)])
    spelled = _spell_tokens(tokens, language, flat, _joined(heard, language))
    groups: list[list[int]] = []
    for index, tok in enumerate(tokens):
        # Korean words are the space-separated eojeol; English and CJK words are tokens.
        same_word = (
            language == "ko" and bool(groups) and tokens[groups[-1][-1]].origin == tok.origin
        )
        if same_word:
            groups[-1].append(index)
        else:
            groups.append([index])
    words = []
    for number, group in enumerate(groups):
        first, last = tokens[group[0]], tokens[group[-1]]
        following = tokens[groups[number + 1][0]].start if number + 1 < len(groups) else len(flat)
        words.append(
            RefWord(
                text=flat[first.start : last.end],
                units=tuple(u for i in group for u in spelled[i]),
                boundary_after=_boundary(flat[last.end : following]),
            )
        )
    return words


def _joined(found: Sequence[str] | None, language: str) -> str | None:
    """Units as one string to look a reading up in: words between spaces, else run together."""
    if found is None:
        return None
    return f" {' '.join(found)} " if language == "en" else "".join(found)


def _boundary(between: str) -> Boundary:
    if any(c in _SENTENCE_MARKS for c in between):
        return Boundary.SENTENCE
    if any(c in _PHRASE_MARKS for c in between):
        return Boundary.PHRASE
    return Boundary.NONE


def _scan(flat: str, segment_starts: Sequence[int]) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(flat):
        start, end = match.span()
        # A token never starts before the first segment, so origin is at least 0.
        origin = bisect_right(segment_starts, start) - 1
        tokens.append(_Token(match.lastgroup or "word", flat[start:end], start, end, origin))
    return tokens


def _spell_tokens(
    tokens: Sequence[_Token], language: str, flat: str, reference: str | None = None
) -> list[list[str]]:
    """Comparison units for each token, in order; ``reference`` (its units joined, see
    ``units``) picks between the readings of a number that has several."""
    spelled = []
    for index, tok in enumerate(tokens):
        if tok.kind == "num":
            spelled.append(_number(tokens, index, language, reference))
        elif tok.kind == "word":
            said = (
                spoken_forms.abbreviation(tok.text, flat[tok.end :]) if language == "en" else None
            )
            spelled.append(list(said) if said else [tok.text.casefold()])
        elif language == "ja":
            spelled.append([_hiragana(tok.text)])
        else:
            spelled.append([tok.text])
    return spelled


def _number(
    tokens: Sequence[_Token], index: int, language: str, reference: str | None
) -> list[str]:
    tok = tokens[index]
    following = _hangul_after(tokens, index) if language == "ko" else ""
    plain = tok.text.isdigit() and not (len(tok.text) > 1 and tok.text[0] == "0")
    if language == "ko" and plain and int(tok.text) <= spoken_forms.NATIVE_KOREAN_MAX * 100:
        readings = [list(r) for r in spoken_forms.korean_readings(int(tok.text), following)]
        return spoken_forms.choose(readings, reference, "")
    default = spell_number(tok.text, language, spoken_forms.counter_is_native(following))
    year = (
        spoken_forms.english_year(int(tok.text), _english) if language == "en" and plain else None
    )
    if year is None:
        return default
    return spoken_forms.choose([default, year], reference, " ")


def _hangul_after(tokens: Sequence[_Token], index: int) -> str:
    """The Hangul syllables right after the number token at index (a counter, maybe)."""
    following = ""
    for tok in tokens[index + 1 : index + 3]:
        if tok.kind != "hangul":
            break
        following += tok.text
    return following


def _hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def spell_number(written: str, language: str, before_counter: bool = False) -> list[str]:
    """Units of a written number ("3", "1,000", "3.5", "3rd", "50%", "3:30") as spoken."""
    match = _NUMBER.fullmatch(written)
    if match is None:
        raise ValueError(f"not a number: {written!r}")
    body, suffix = match.group(1), (match.group(2) or "").lower()
    if re.fullmatch(r"\d{1,3}(,\d{3})+", body):
        body = body.replace(",", "")
    if language == "en" and re.fullmatch(r"\d{1,2}:\d{2}", body):
        words = _english_time(body)
    elif re.fullmatch(r"\d+\.\d+", body):
        whole, fraction = body.split(".")
        words = [*_say(whole, language, False), _POINT[language]]
        words += [w for digit in fraction for w in _say(digit, language, False)]
    else:
        words = [
            w for part in re.split(r"[.,:]", body) for w in _say(part, language, before_counter)
        ]
    if suffix in ("st", "nd", "rd", "th") and language == "en":
        words[-1] = _english_ordinal(words[-1])
    elif suffix == "%":
        words = [*_PERCENT_PREFIX.get(language, []), *words, *_PERCENT_SUFFIX.get(language, [])]
    return words if language == "en" else [c for w in words for c in w]


_POINT = {"en": "point", "ko": "점", "ja": "点", "zh": "点"}
_PERCENT_PREFIX = {"zh": ["百分之"]}
_PERCENT_SUFFIX = {"en": ["percent"], "ko": ["퍼센트"], "ja": ["ぱーせんと"]}


def _say(digits: str, language: str, before_counter: bool) -> list[str]:
    """Words for a run of digits: a number, or digit by digit ("007", very long runs)."""
    if (len(digits) > 1 and digits[0] == "0") or len(digits) >= _DIGITWISE_FROM:
        return [w for d in digits for w in _say(d, language, False)]
    n = int(digits)
    if language == "en":
        return _english(n)
    if language == "ko":
        if before_counter and 1 <= n <= 99:
            return [native_korean(n, before_counter=True)]
        return [sino_korean(n)]
    return [_cjk_number(n, language)]


_EN_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_EN_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_EN_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_EN_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _english(n: int) -> list[str]:
    if n < 20:
        return [_EN_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_EN_TENS[tens]] + ([_EN_ONES[ones]] if ones else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [_EN_ONES[hundreds], "hundred"] + (_english(rest) if rest else [])
    for scale, name in _EN_SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return _english(head) + [name] + (_english(rest) if rest else [])
    raise AssertionError("unreachable")


def _english_ordinal(word: str) -> str:
    if word in _EN_ORDINALS:
        return _EN_ORDINALS[word]
    return word[:-1] + "ieth" if word.endswith("y") else word + "th"


def _english_time(clock: str) -> list[str]:
    hour, minute = (int(p) for p in clock.split(":"))
    if minute == 0:
        return [*_english(hour), "o'clock"]
    return [*_english(hour), *(["oh"] if minute < 10 else []), *_english(minute)]


_CJK_DIGITS = "零一二三四五六七八九"
_CJK_SMALL = ((1000, "千"), (100, "百"), (10, "十"))
_CJK_BIG = {"zh": ("", "万", "亿", "兆"), "ja": ("", "万", "億", "兆")}


def _cjk_group(n: int, language: str, leading: bool) -> str:
    """Reading of 1..9999: Chinese writes 一百/零 (一百零一), Japanese 百 and no 零 (百一)."""
    parts: list[str] = []
    gap = False
    for value, unit in _CJK_SMALL:
        digit = n // value % 10
        if digit == 0:
            gap = gap or bool(parts)
            continue
        if gap and language == "zh":
            parts.append("零")
        gap = False
        bare_one = language == "ja" or (unit == "十" and leading and not parts)
        parts.append(unit if digit == 1 and bare_one else _CJK_DIGITS[digit] + unit)
    if n % 10:
        if gap and language == "zh":
            parts.append("零")
        parts.append(_CJK_DIGITS[n % 10])
    return "".join(parts)


def _cjk_number(n: int, language: str) -> str:
    """Chinese or Japanese numeral reading (3 → 三, 10 → 十, 10000 → 一万)."""
    if n == 0:
        return _CJK_DIGITS[0]
    if n >= 10**16:
        return "".join(_CJK_DIGITS[int(d)] for d in str(n))
    parts: list[str] = []
    big = _CJK_BIG[language]
    for power in range(len(big) - 1, -1, -1):
        group = n // 10000**power % 10000
        if not group:
            continue
        if parts and group < 1000 and language == "zh":
            parts.append("零")
        leading = not parts
        parts.append(_cjk_group(group, language, leading) + big[power])
    return "".join(parts)

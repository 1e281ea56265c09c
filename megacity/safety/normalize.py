"""Text normalisation shared by the prompt firewall and moderation (Korean and English).

``normalize(text)`` undoes the cheap evasions a keyword rule would otherwise miss and
returns the variants a rule should be matched against:

* ``text``: NFKC (fullwidth → ASCII), invisible characters removed, Unicode *tag*
  characters turned back into the ASCII they smuggle, Cyrillic/Greek look-alikes folded
  to Latin, compatibility jamo kept as jamo (NFKC would turn ``ㅅ`` into a conjoining
  ``ᄉ``), spelled-out jamo composed (``ㅅㅣㅂㅏㄹ`` → ``시발``), lower-cased;
* ``collapsed``: letter-spaced runs joined (``i g n o r e`` → ``ignore``, ``씨 발`` →
  ``씨발``; a double space inside a run stays a word break) and junk inside a Hangul word
  dropped (``씨1발``, ``시.발`` → ``씨발``, ``시발``);
* ``leet``: ``collapsed`` with leetspeak folded inside Latin words (``1gn0r3`` →
  ``ignore``, ``a$$hole`` → ``asshole``);
* ``initials``: the words that mix syllables with bare consonants, reduced to initial
  consonants (``시ㅂ`` → ``ㅅㅂ``), so consonant-only slang rules see them; ``""`` if none.

All tables are built once at import; the per-call work is a few ``str.translate`` and
regex passes (about 10 µs for a 300-character prompt).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["NormalizedText", "any_of", "compose_jamo", "initials", "normalize"]

# Compatibility jamo (U+3131..U+3163), in the order of the syllable formula's tables.
_CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNGSEONG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONGSEONG = " ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"  # index 0: none
_SYLLABLE_BASE, _SYLLABLE_LAST = 0xAC00, 0xD7A3
_CHO_INDEX = {c: i for i, c in enumerate(_CHOSEONG)}
_JUNG_INDEX = {c: i for i, c in enumerate(_JUNGSEONG)}
_JONG_INDEX = {c: i for i, c in enumerate(_JONGSEONG) if i}

_LATIN_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
    "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p",
    "С": "c", "Т": "t", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j", "Ү": "y",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "Α": "a", "Β": "b", "Ε": "e", "Η": "h", "Ι": "i",
    "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    "Ζ": "z",
}  # fmt: skip


def _build_table() -> dict[int, str | None]:
    """The one ``str.translate`` table applied after NFKC."""
    table: dict[int, str | None] = {ord(k): v for k, v in _LATIN_HOMOGLYPHS.items()}
    invisible = [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164]
    invisible += [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070)]
    invisible += [0xFEFF, 0xFFA0, *range(0xFE00, 0xFE10), 0xE0000, 0xE0001, 0xE007F]
    table.update(dict.fromkeys(invisible))
    # Tag characters spell ASCII invisibly ("ASCII smuggling"); a model may still read
    # them, so they are made visible to the rules rather than dropped.
    table.update({cp: chr(cp - 0xE0000) for cp in range(0xE0020, 0xE007F)})
    # NFKC maps compatibility jamo to conjoining jamo; map them back so that "ㅅㅂ"
    # stays one form whatever the input used.
    conjoining_cho = "ᄀᄁᄂᄃᄄᄅᄆᄇᄈᄉᄊᄋᄌᄍᄎᄏᄐᄑᄒ"
    table.update({ord(c): _CHOSEONG[i] for i, c in enumerate(conjoining_cho)})
    table.update({0x1161 + i: v for i, v in enumerate(_JUNGSEONG)})
    table.update({0x11A8 + i - 1: v for i, v in enumerate(_JONGSEONG) if i})
    return table


def _char_class(codes: Iterable[int]) -> str:
    """A regex character class of ``codes`` written as ranges (sre scans ranges fast)."""
    ranges: list[list[int]] = []
    for code in sorted(codes):
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    parts = (re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "") for a, b in ranges)
    return "[" + "".join(parts) + "]"


_TABLE = _build_table()
_NEEDS_TABLE = re.compile(_char_class(_TABLE))
_LEET = str.maketrans({"1": "i", "3": "e", "0": "o", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})  # fmt: skip

# Each rewrite has a cheap hint (a character class first, which the regex engine scans
# fast) so that ordinary text pays a few microseconds for the step, not the full rewrite.
_HAS_JAMO_VOWEL = re.compile(r"[ㅏ-ㅣ]")
_HAS_JAMO_CONSONANT = re.compile(r"[ㄱ-ㅎ]")
_LETTER = r"[^\W_]"  # a letter or digit of any script
_SEP = r"[ .\-_*·/|~,]"
_SPACED_HINT = re.compile(rf"{_SEP}{_LETTER}{_SEP}")
# Three or more single letters each separated by one to three separators
# ("i g n o r e", "f.u.c.k"), or two or more single Hangul syllables ("씨 발", "탈.옥").
_SPACED = re.compile(
    rf"\b{_LETTER}{_SEP}{{1,3}}{_LETTER}\b(?:{_SEP}{{1,3}}{_LETTER}\b)+"
    rf"|\b[가-힣](?:{_SEP}{{1,3}}[가-힣]\b)+"
)
_WORD_GAP = re.compile(r"\s{2,}")
_NOT_LETTER = re.compile(r"[\W_]+")
_JUNK = r"[0-9!@#$%^&*.,_\-~`'\"+=:;|/\\]"
_HANGUL_JUNK = re.compile(rf"{_JUNK}(?<=[가-힣ㄱ-ㅎ].){_JUNK}?(?=[가-힣ㄱ-ㅎ])")
_LEET_HINT = re.compile(r"[0-9@$!](?:(?<=[a-z].)|(?=[a-z]))")
_LEET_WORD = re.compile(r"[a-z]+[0-9@$!][a-z0-9@$!]*|[0-9@$!]+[a-z][a-z0-9@$!]*")
_JAMO_WORD = re.compile(r"\S*[ㄱ-ㅎ]\S*")


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """A text's normalised form and the evasion-undoing variants rules match against."""

    text: str
    collapsed: str
    leet: str
    initials: str

    @property
    def variants(self) -> tuple[str, ...]:
        """The distinct non-empty forms, ``text`` first."""
        out: list[str] = []
        for form in (self.text, self.collapsed, self.leet, self.initials):
            if form and form not in out:
                out.append(form)
        return tuple(out)


def normalize(text: str) -> NormalizedText:
    """Normalise ``text`` for matching (see the module docstring for each variant)."""
    if _HAS_JAMO_VOWEL.search(text):
        text = compose_jamo(text)  # before NFKC, which would compose only some of them
    base = unicodedata.normalize("NFKC", text)
    ascii_only = base.isascii()
    if not ascii_only and _NEEDS_TABLE.search(base):
        base = base.translate(_TABLE)
    base = base.lower()
    spaced = _SPACED_HINT.search(f" {base} ")
    collapsed = _SPACED.sub(_join_spaced, base) if spaced else base
    if not ascii_only:
        collapsed = _HANGUL_JUNK.sub("", collapsed)
    leet = _fold_leet(collapsed) if _LEET_HINT.search(collapsed) else collapsed
    jamo = not ascii_only and _HAS_JAMO_CONSONANT.search(leet)
    words = _JAMO_WORD.findall(leet) if jamo else []
    return NormalizedText(base, collapsed, leet, " ".join(initials(w) for w in words))


_Trie = dict[str, "_Trie"]


def any_of(stems: Iterable[str]) -> re.Pattern[str]:
    """A pattern whose ``search(text)`` finds one of ``stems`` in ``text`` iff any occurs.

    The same answer as ``any(stem in text for stem in stems)``, in one pass of the regex
    engine instead of one Python step per stem: the stems are compiled as a trie, and a
    stem that another one starts with is enough on its own (only presence is asked).
    """
    trie: _Trie = {}
    for stem in stems:
        node = trie
        for char in stem:
            node = node.setdefault(char, {})
        node[""] = {}  # a stem ends here

    def branch(node: _Trie) -> str:
        if "" in node:
            return ""
        alts = [re.escape(char) + branch(child) for char, child in sorted(node.items())]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return re.compile(branch(trie) if trie else "(?!)")


def initials(text: str) -> str:
    """``text`` with every Hangul syllable replaced by its initial consonant (``시발`` → ``ㅅㅂ``)."""
    out = []
    for char in text:
        code = ord(char)
        if _SYLLABLE_BASE <= code <= _SYLLABLE_LAST:
            out.append(_CHOSEONG[(code - _SYLLABLE_BASE) // 588])
        else:
            out.append(char)
    return "".join(out)


def compose_jamo(text: str) -> str:
    """Compose spelled-out compatibility jamo into syllables (``ㅅㅣㅂㅏㄹ`` → ``시발``)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        lead = _CHO_INDEX.get(text[i])
        vowel = _JUNG_INDEX.get(text[i + 1]) if i + 1 < n else None
        if lead is None or vowel is None:
            out.append(text[i])
            i += 1
            continue
        tail = _JONG_INDEX.get(text[i + 2], 0) if i + 2 < n else 0
        if tail and i + 3 < n and text[i + 3] in _JUNG_INDEX:
            tail = 0  # the consonant starts the next syllable
        out.append(chr(_SYLLABLE_BASE + (lead * 21 + vowel) * 28 + tail))
        i += 3 if tail else 2
    return "".join(out)


def _join_spaced(match: re.Match[str]) -> str:
    """Join one letter-spaced run; a gap of two or more spaces stays a word break."""
    return " ".join(_NOT_LETTER.sub("", part) for part in _WORD_GAP.split(match.group()))


def _fold_leet(text: str) -> str:
    """Fold leetspeak in the Latin words of ``text`` that mix letters with digits/symbols."""

    def fold(match: re.Match[str]) -> str:
        word = match.group()
        stem = word.rstrip("!")  # "stop!" keeps its exclamation mark
        return stem.translate(_LEET) + word[len(stem) :]

    return _LEET_WORD.sub(fold, text)

"""Korean/English PII detection and reversible masking for prompts, answers and logs.

``find_pii`` finds phone numbers, resident registration numbers (RRN), e-mail addresses,
payment cards, bank accounts, postal addresses, person names (in context) and IP
addresses; ``PIIMasker`` swaps them for placeholders such as ``[PHONE_1]`` and keeps the
mapping so ``restore`` / ``StreamRestorer`` can put the originals back into the answer.

Numbers are validated, not just shaped: cards pass Luhn, IPs parse, IBANs pass mod 97,
RRNs carry a real past birth date. RRNs issued since October 2020 no longer satisfy the
old weighted mod-11 check digit (the last six digits became random), so a checksum-valid
RRN is always masked, and a checksum-invalid *hyphenated* ``YYMMDD-[1-8]NNNNNN`` is masked
when a context word (주민, 주민번호, 주민등록, 외국인등록, RRN, resident registration)
is within about 30 characters. Bank accounts need a bank/account word nearby or one of
the hyphen layouts Korean banks print (3-3-6, 4-3-6, 6-2-6 …). Names need context: an
honorific or role after a Korean name (김민준 학생, 배수지님), a cue before one (이름은,
성명:, my name is, Dear, Mr.), never a bare word. Overlaps resolve by kind (e-mail, RRN,
card, phone, IP, account, address, name), then by length.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from megacity.safety import pii_patterns as P
from megacity.safety.pii_names import english_name_spans, korean_name_spans


class PIIKind(StrEnum):
    """A kind of personal data; the value names its placeholders (``[PHONE_1]``)."""

    PHONE = "PHONE"
    RRN = "RRN"
    EMAIL = "EMAIL"
    CARD = "CARD"
    ACCOUNT = "ACCOUNT"
    ADDRESS = "ADDRESS"
    NAME = "NAME"
    IP = "IP"


@dataclass(frozen=True, slots=True)
class PIIMatch:
    """One piece of personal data: its kind and ``text[start:end]`` (character offsets)."""

    kind: PIIKind
    start: int
    end: int
    text: str


# Lower rank wins an overlap: the more specific, validated kinds first.
_RANK = {
    PIIKind.EMAIL: 0,
    PIIKind.RRN: 1,
    PIIKind.CARD: 2,
    PIIKind.PHONE: 3,
    PIIKind.IP: 4,
    PIIKind.ACCOUNT: 5,
    PIIKind.ADDRESS: 6,
    PIIKind.NAME: 7,
}
_Span = tuple[int, int]
_CONTEXT_BEFORE = 30  # characters searched for an RRN/account context word before a number
_CONTEXT_AFTER = 15  # … and after it


def _phones(text: str) -> Iterator[_Span]:
    patterns = (P.KR_MOBILE, P.KR_LANDLINE, P.NANP, P.INTERNATIONAL)
    for pattern in patterns if "+" in text else patterns[:3]:
        for m in pattern.finditer(text):
            digits = sum(c.isdigit() for c in m.group(0))
            if 8 <= digits <= 15:
                yield m.span()
    for m in P.KR_SERVICE.finditer(text):
        first, second = int(m.group(1)), int(m.group(2))
        if not first < second <= first + 150:  # "임진왜란(1592-1598)" is a year range
            yield m.span()


def _rrns(text: str) -> Iterator[_Span]:
    today = _dt.date.today()
    for m in P.RRN.finditer(text):
        yy, mm, dd, hyphen, code, rest = m.groups()
        if not P.rrn_birth_ok(yy, mm, dd, code, today):
            continue
        if P.rrn_checksum_ok(yy + mm + dd + code + rest):
            yield m.span()
        elif (
            hyphen
            and code in "12345678"
            and _near(text, m.start(), m.end(), P.RRN_CONTEXT, after=_CONTEXT_BEFORE)
        ):
            yield m.span()  # issued after 2020-10: no check digit, but labelled as an RRN


def _emails(text: str) -> Iterator[_Span]:
    if "@" in text:
        for m in P.EMAIL.finditer(text):
            yield m.span()


def _cards(text: str) -> Iterator[_Span]:
    for m in P.CARD.finditer(text):
        if P.card_ok(re.sub(r"\D", "", m.group(0))):
            yield m.span()


def _accounts(text: str) -> Iterator[_Span]:
    for m in P.ACCOUNT_NUMBER.finditer(text):
        number = m.group(0)
        digits = re.sub(r"\D", "", number)
        if not 8 <= len(digits) <= 16 or _looks_like_date(digits):
            continue
        start, end = m.span()
        if P.ACCOUNT_NEGATIVE.search(text, max(0, start - 15), start):
            continue
        shape = tuple(len(g) for g in number.split("-"))
        if shape in P.ACCOUNT_SHAPES or _near(text, start, end, P.ACCOUNT_CONTEXT):
            yield start, end
    for m in P.IBAN.finditer(text):
        if P.iban_ok(m.group(0)):
            yield m.span()


def _looks_like_date(digits: str) -> bool:
    """Whether an 8-digit run reads as YYYYMMDD (an order/exam date, not an account)."""
    return (
        len(digits) == 8
        and digits[:2] in ("19", "20")
        and "01" <= digits[4:6] <= "12"
        and "01" <= digits[6:] <= "31"
    )


def _ips(text: str) -> Iterator[_Span]:
    for m in P.IPV4.finditer(text) if text.count(".") >= 3 else ():
        if P.ip_ok(m.group(0)) and not P.IP_NEGATIVE.search(
            text, max(0, m.start() - 12), m.start()
        ):
            yield m.span()
    if "::" in text or text.count(":") >= 7:
        for m in P.IPV6.finditer(text):
            if P.ip_ok(m.group(0)):
                yield m.span()


def _addresses(text: str) -> Iterator[_Span]:
    if P.KR_ADDRESS_GATE.search(text):
        for m in P.KR_ADDRESS.finditer(text):
            yield m.start(), len(m.group(0).rstrip(", ")) + m.start()
    lower = text.lower()
    if "우편" in text or "zip" in lower or "post" in lower:
        for m in P.POSTAL.finditer(text):
            yield m.span(1)
    if P.EN_ADDRESS_GATE.search(text):
        for m in P.EN_ADDRESS.finditer(text):
            yield m.span()


def _names(text: str) -> Iterator[_Span]:
    yield from korean_name_spans(text)
    yield from english_name_spans(text)


def _near(
    text: str, start: int, end: int, context: re.Pattern[str], after: int = _CONTEXT_AFTER
) -> bool:
    """Whether ``context`` occurs within a few characters before or after ``text[start:end]``."""
    return bool(
        context.search(text, max(0, start - _CONTEXT_BEFORE), start)
        or context.search(text, end, end + after)
    )


_FINDERS: tuple[tuple[PIIKind, Callable[[str], Iterator[_Span]], int, int], ...] = (
    # (kind, finder, least digits in the text, longest digit run it needs)
    (PIIKind.EMAIL, _emails, 0, 0),
    (PIIKind.RRN, _rrns, 13, 6),
    (PIIKind.CARD, _cards, 13, 4),
    (PIIKind.PHONE, _phones, 8, 3),
    (PIIKind.IP, _ips, 4, 1),
    (PIIKind.ACCOUNT, _accounts, 8, 2),
    (PIIKind.ADDRESS, _addresses, 1, 1),
    (PIIKind.NAME, _names, 0, 0),
)
ALL_KINDS = frozenset(PIIKind)


def find_pii(text: str, kinds: Collection[PIIKind] | None = None) -> list[PIIMatch]:
    """Personal data in ``text``: sorted by position, non-overlapping."""
    wanted = ALL_KINDS if kinds is None else frozenset(kinds)
    runs = [len(run) for run in P.DIGIT_RUN.findall(text)]
    digits, longest = sum(runs), max(runs, default=0)
    candidates: list[tuple[int, int, PIIKind]] = []
    for kind, finder, least_digits, least_run in _FINDERS:
        if kind in wanted and digits >= least_digits and longest >= least_run:
            candidates.extend((s, e, kind) for s, e in finder(text) if e > s)
    if not candidates:
        return []
    candidates.sort(key=lambda c: (_RANK[c[2]], c[0] - c[1], c[0]))
    taken: list[tuple[int, int, PIIKind]] = []
    for start, end, kind in candidates:
        if all(end <= s or start >= e for s, e, _ in taken):
            taken.append((start, end, kind))
    taken.sort()
    return [PIIMatch(kind, s, e, text[s:e]) for s, e, kind in taken]


# ── Masking and restoring ──────────────────────────────────────────────────────────────

_PLACEHOLDER = re.compile(r"\[(" + "|".join(k.value for k in PIIKind) + r")_(\d{1,9})\]")
_MAX_PLACEHOLDER = 24  # characters: "[ADDRESS_123456789]" fits; a held-back tail never exceeds it
_PARTIAL_PREFIXES = frozenset(
    f"[{k.value}_"[:i] for k in PIIKind for i in range(1, len(k.value) + 3)
)


@dataclass
class Masked:
    """Masked text and the placeholder → original mapping (shared across a chat)."""

    text: str
    mapping: dict[str, str] = field(default_factory=dict)


class PIIMasker:
    """Replaces personal data with numbered placeholders; the same original → the same one."""

    def __init__(self, kinds: Collection[PIIKind] | None = None) -> None:
        self._kinds = ALL_KINDS if kinds is None else frozenset(kinds)

    def mask(self, text: str, mapping: dict[str, str] | None = None) -> Masked:
        """Mask ``text``; ``mapping`` (extended in place) keeps numbering stable across calls."""
        mapping = {} if mapping is None else mapping
        matches = find_pii(text, self._kinds)
        if not matches:
            return Masked(text, mapping)
        known = {original: key for key, original in mapping.items()}
        counts = _highest_numbers(mapping)
        parts: list[str] = []
        cursor = 0
        for match in matches:
            placeholder = known.get(match.text)
            if placeholder is None:
                counts[match.kind.value] = counts.get(match.kind.value, 0) + 1
                placeholder = f"[{match.kind.value}_{counts[match.kind.value]}]"
                mapping[placeholder] = match.text
                known[match.text] = placeholder
            parts.append(text[cursor : match.start])
            parts.append(placeholder)
            cursor = match.end
        parts.append(text[cursor:])
        return Masked("".join(parts), mapping)

    def redact(self, text: str) -> str:
        """``text`` with placeholders instead of personal data, for logs (no mapping kept)."""
        return self.mask(text).text

    def mask_messages(
        self, messages: list[dict[str, Any]], mapping: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Masked copies of OpenAI chat messages (str or text-part content) and their mapping."""
        mapping = {} if mapping is None else mapping
        masked: list[dict[str, Any]] = []
        for message in messages:
            copy = dict(message)
            content = message.get("content")
            if isinstance(content, str):
                copy["content"] = self.mask(content, mapping).text
            elif isinstance(content, list):
                copy["content"] = [self._mask_part(part, mapping) for part in content]
            masked.append(copy)
        return masked, mapping

    def _mask_part(self, part: Any, mapping: dict[str, str]) -> Any:
        if (
            isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ):
            return {**part, "text": self.mask(part["text"], mapping).text}
        return dict(part) if isinstance(part, dict) else part


def _highest_numbers(mapping: Mapping[str, str]) -> dict[str, int]:
    """The highest placeholder number used so far per kind ("PHONE" → 2 after [PHONE_2])."""
    counts: dict[str, int] = {}
    for key in mapping:
        parsed = _PLACEHOLDER.fullmatch(key)
        if parsed:
            kind = parsed.group(1)
            counts[kind] = max(counts.get(kind, 0), int(parsed.group(2)))
    return counts


def restore(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with every placeholder found in ``mapping`` replaced by its original."""
    if "[" not in text or not mapping:
        return text
    return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)


class StreamRestorer:
    """Restores placeholders in a streamed answer whose chunks may split one ("[PHO" + "NE_1]")."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._mapping = mapping
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """What can be emitted now; a trailing possible placeholder prefix is held back."""
        buffer = self._pending + chunk
        cut = buffer.rfind("[", max(0, len(buffer) - _MAX_PLACEHOLDER))
        if cut >= 0 and _is_partial(buffer[cut:]):
            self._pending = buffer[cut:]
            buffer = buffer[:cut]
        else:
            self._pending = ""
        return restore(buffer, self._mapping)

    def flush(self) -> str:
        """Whatever is still held back, restored where it is a whole placeholder."""
        rest, self._pending = self._pending, ""
        return restore(rest, self._mapping)


def _is_partial(tail: str) -> bool:
    """Whether ``tail`` (starting with "[") could still grow into a placeholder."""
    if tail in _PARTIAL_PREFIXES:
        return True
    head, sep, digits = tail.partition("_")
    return bool(sep) and f"{head}_" in _PARTIAL_PREFIXES and digits.isdigit() and len(digits) < 10

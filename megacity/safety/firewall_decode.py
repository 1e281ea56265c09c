"""Find encoded payloads in a prompt and decode them, bounded, for the firewall to re-inspect.

Schemes: base64 (standard and URL-safe), hex (plain or ``\\x``-escaped), URL
percent-encoding, ``\\uXXXX`` escapes and HTML character references, ROT13 of the whole
text, and the whole text reversed (only when the prompt talks about reading backwards).
A candidate is kept only when it decodes to printable UTF-8 text that differs from the
input; at most ``MAX_CANDIDATES`` per call, each at most ``MAX_BLOB_CHARS`` long, so a
prompt made of base64 costs bounded work.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import urllib.parse
from dataclasses import dataclass

from megacity.safety.normalize import any_of

__all__ = ["MAX_BLOB_CHARS", "MAX_CANDIDATES", "Decoded", "decode_candidates"]

MAX_CANDIDATES = 6
MAX_BLOB_CHARS = 8192  # characters of one encoded run that are decoded
_MIN_PRINTABLE = 0.85  # share of printable characters a decoded text must have

_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_MIN_BLOB = 12  # characters: shorter tokens are words, not payloads
_TOKEN_EDGES = "\"'`.,;:!?()[]{}<>"
_HEX_ESCAPED = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){4,}")
_ESCAPES = re.compile(r"(?:\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}){3,}")
_ONE_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2}){3,}")
_ENTITIES = re.compile(r"(?:&#[xX]?[0-9A-Fa-f]{1,6};){3,}")
_BACKWARDS_CUE = re.compile(r"backward|revers|거꾸로|반대로|역순|뒤집")
# ROT13 is tried only when the text holds the ROT13 form of a word attacks use, so
# ordinary English is not decoded into gibberish and inspected again.
_ROT13_STEMS = tuple(
    codecs.encode(word, "rot13")
    for word in (
        "ignor", "instruct", "prompt", "system", "rule", "restrict", "reveal", "forget",
        "disregard", "pretend", "filter", "censor", "jailbr", "guideline", "previous", "decode",
    )
)  # fmt: skip
_ANY_ROT13_STEM = any_of(_ROT13_STEMS)


@dataclass(frozen=True, slots=True)
class Decoded:
    """One decoded candidate: the scheme's name (a rule-id suffix) and the plain text."""

    scheme: str
    text: str


def decode_candidates(text: str, *, folded: str | None = None) -> list[Decoded]:
    """The decodable payloads in ``text``, at most ``MAX_CANDIDATES``.

    ``folded`` is the normalised text (lower-case, fullwidth and look-alikes folded to
    ASCII); ROT13 and reversal apply to it, and are skipped when it is None.
    """
    found: list[Decoded] = []
    _collect_tokens(text, found)
    _collect_escapes(text, found)
    if folded is not None:
        if _ANY_ROT13_STEM.search(folded):
            found.append(Decoded("rot13", codecs.encode(folded[:MAX_BLOB_CHARS], "rot13")))
        if _BACKWARDS_CUE.search(folded):
            found.append(Decoded("reversed", folded[:MAX_BLOB_CHARS][::-1]))
    return found[:MAX_CANDIDATES]


def _collect_tokens(text: str, found: list[Decoded]) -> None:
    """Append the whitespace-separated tokens of ``text`` that are base64 or hex text."""
    for token in text.split():
        if len(token) < _MIN_BLOB or len(found) >= MAX_CANDIDATES:
            continue
        blob = token.strip(_TOKEN_EDGES)[:MAX_BLOB_CHARS]
        if len(blob) < _MIN_BLOB:
            continue
        plain = None
        if len(blob) >= 16 and _HEX.fullmatch(blob):
            plain = _from_hex(blob)
            scheme = "hex"
        elif _BASE64.fullmatch(blob):
            plain = _from_base64(blob)
            scheme = "base64"
        if plain is not None:
            found.append(Decoded(scheme, plain))


def _collect_escapes(text: str, found: list[Decoded]) -> None:
    """Append ``text`` with its ``\\x``/``\\u``/``%XX``/``&#..;`` escapes decoded, if any."""
    if "\\x" in text:
        for blob in _HEX_ESCAPED.findall(text)[:MAX_CANDIDATES]:
            plain = _from_hex(blob.replace("\\x", ""))
            if plain is not None:
                found.append(Decoded("hex", plain))
    for marker, pattern, scheme, decode_all in (
        ("%", _PERCENT, "url", _from_percent),
        ("\\", _ESCAPES, "unicode_escape", _from_escapes),
        ("&#", _ENTITIES, "html_entities", html.unescape),
    ):
        if marker in text and pattern.search(text):
            plain = decode_all(text[: MAX_BLOB_CHARS * 2])
            if plain != text and _printable(plain):
                found.append(Decoded(scheme, plain))


def _from_base64(blob: str) -> str | None:
    if blob.isalpha() and (blob.islower() or blob.isupper() or blob.istitle()):
        return None  # a long plain word, not base64
    padded = blob.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    altchars = b"-_" if ("-" in blob or "_" in blob) else None
    try:
        raw = base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _as_text(raw)


def _from_hex(blob: str) -> str | None:
    try:
        return _as_text(bytes.fromhex(blob))
    except ValueError:
        return None


def _from_percent(text: str) -> str:
    return urllib.parse.unquote(text, errors="replace")


def _from_escapes(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = int(match.group(1) or match.group(2), 16)
        return chr(code) if code <= 0x10FFFF else match.group()

    return _ONE_ESCAPE.sub(one, text)


def _as_text(raw: bytes) -> str | None:
    """``raw`` as UTF-8 text when it is mostly printable, else None (random bytes)."""
    try:
        plain = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return plain if len(plain) >= 4 and _printable(plain) else None


def _printable(text: str) -> bool:
    good = sum(1 for c in text if c.isprintable() or c in "\n\t\r")
    return good >= _MIN_PRINTABLE * len(text) and "\ufffd" not in text

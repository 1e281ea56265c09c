"""Protected identities: real people whose voice or face must not be synthesised on request.

The operator keeps a YAML list (see examples/protected_identities.yaml); a prompt or
a voice/face description that names one of them is refused by the generation
endpoints. Matching works on NFKC + casefolded text with invisible format characters
(zero-width spaces, joiners) removed, so full-width letters and hidden characters do
not slip a name past it:

* Latin aliases match as whole words: "IU" in "sing like IU" or "IU의", not in
  "IUPAC" or "Kiu". Separators inside a name are optional: the alias "Jung Kook"
  matches "Jung-kook", "jung kook" and "jungkook".
* Hangul (and other unspaced scripts) match as substrings that end the word or go on
  with a particle: "아이유의 목소리로", "아이유처럼", "아이유 노래" match; "아이유학"
  does not. A name spelled with a space between every syllable ("아 이 유") matches
  too, but not a half-spaced one ("아 이유", which reads as "ah, reason").

Each kind (voice, face) gets one regex of every alias, shaped as a trie (aliases that
share a beginning share a branch; ending is tried after going on, so the longest name
wins), which keeps a search fast with hundreds of names. The matched text, with its
separators removed, names the alias in a table.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

Kind = Literal["voice", "face"]
KINDS: tuple[Kind, ...] = get_args(Kind)
MIN_ALIAS_CHARS = 2  # after normalisation, without separators: one letter matches too much
MAX_ALIAS_CHARS = 100

_SEPARATOR = r"[\s._·\-]"  # tolerated between the parts of a name
_SEPARATORS = re.compile(_SEPARATOR + "+")
_LATIN = "0-9a-z\u00c0-\u024f"  # letters and digits of Latin-script words (casefolded)
_LATIN_CHAR = re.compile(f"[{_LATIN}]")
_HANGUL = "\uac00-\ud7a3"  # precomposed syllables (NFKC composes conjoining jamo)
_HANGUL_CHAR = re.compile(f"[{_HANGUL}]")
# What may follow a Korean name inside the same word: case/topic particles and the
# nouns people glue to a name when asking for an imitation ("아이유목소리").
PARTICLES = (
    "의", "가", "이", "는", "은", "를", "을", "도", "와", "과", "랑", "로", "으로", "한테",
    "에게", "처럼", "같은", "같이", "목소리", "얼굴", "스타일", "느낌", "버전", "씨", "님",
)  # fmt: skip
_AFTER_HANGUL = "(?=(?:{})|(?![{}]))".format("|".join(PARTICLES), _HANGUL)
# Trie atoms besides single characters: separators between the parts of a name
# (optional), and between the syllables of a fully spaced Hangul name (required).
_SEP_ANY = "\x00*"
_SEP_SOME = "\x00+"
_END = ""  # a name ends at this node
_ATOM_PATTERNS = {_SEP_ANY: _SEPARATOR + "*", _SEP_SOME: _SEPARATOR + "+"}
_Trie = dict[str, "_Trie"]


@dataclass(frozen=True, slots=True)
class ProtectedIdentity:
    """A person (or group) and the names they go by; `kinds`: what may not be synthesised."""

    name: str
    aliases: tuple[str, ...]
    kinds: frozenset[Kind]


@dataclass(frozen=True, slots=True)
class IdentityMatch:
    """The first protected name found in a text: whose, which alias, and for which kind."""

    identity: str
    alias: str
    kind: Kind


def normalise(text: str) -> str:
    """NFKC, casefolded, without format characters (Unicode category Cf)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")


class ProtectedIdentities:
    """The operator's list, compiled once; `match` is safe to call from any thread."""

    def __init__(self, identities: Sequence[ProtectedIdentity]) -> None:
        self.identities = tuple(identities)
        self._patterns: dict[Kind, re.Pattern[str] | None] = {}
        self._aliases: dict[Kind, dict[str, tuple[str, str]]] = {}
        for kind in KINDS:
            table: dict[str, tuple[str, str]] = {}
            spellings: set[str] = set()
            for identity in self.identities:
                if kind in identity.kinds:
                    for alias in _names(identity):
                        spellings.add(normalise(alias))
                        # Two people with one alias: the first listed is reported.
                        table.setdefault(_squash(normalise(alias)), (identity.name, alias))
            self._aliases[kind] = table
            self._patterns[kind] = _compile(spellings) if spellings else None

    def __len__(self) -> int:
        return len(self.identities)

    @classmethod
    def load(cls, path: Path) -> ProtectedIdentities:
        """Read a YAML list of {name, aliases, kinds}; ValueError naming the bad entry."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from None
        if data is None:
            data = []
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a list of {{name, aliases, kinds}} entries")
        return cls([_entry(path, i, item) for i, item in enumerate(data, 1)])

    def match(self, text: str, kind: Kind) -> IdentityMatch | None:
        """The first protected name in `text` whose `kind` is protected, else None."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
        pattern = self._patterns[kind]
        if pattern is None:
            return None
        found = pattern.search(normalise(text))
        if found is None:
            return None
        identity, alias = self._aliases[kind][_squash(found.group())]
        return IdentityMatch(identity, alias, kind)


def _names(identity: ProtectedIdentity) -> list[str]:
    """The identity's name and aliases, each checked to be long enough to match safely."""
    names = [identity.name, *identity.aliases]
    for alias in names:
        size = len(_squash(normalise(alias)))
        if not MIN_ALIAS_CHARS <= size <= MAX_ALIAS_CHARS:
            raise ValueError(
                f"protected identity {identity.name!r}: alias {alias!r} must have "
                f"{MIN_ALIAS_CHARS} to {MAX_ALIAS_CHARS} characters (separators not counted)"
            )
    return names


def _squash(normalised: str) -> str:
    return _SEPARATORS.sub("", normalised)


def _compile(spellings: Iterable[str]) -> re.Pattern[str]:
    """One regex for every alias: a trie per kind of edge (Latin or not, at each end).

    Within a trie, names that share a beginning share a branch, so a position tries few
    branches; the edge check follows the trie once, and when it fails the engine
    backtracks into the trie for a shorter name ("방탄" when "방탄소년단" is cut).
    """
    tries: dict[tuple[bool, bool], _Trie] = {}
    for normalised in spellings:
        squashed = _squash(normalised)
        edges = (
            _LATIN_CHAR.match(squashed[0]) is not None,
            _LATIN_CHAR.match(squashed[-1]) is not None,
        )
        for atoms in _atoms(normalised):
            node = tries.setdefault(edges, {})
            for atom in atoms:
                node = node.setdefault(atom, {})
            node[_END] = {}
    pieces = [
        (f"(?<![{_LATIN}])" if latin_start else "")
        + _trie_pattern(trie)
        + (f"(?![{_LATIN}])" if latin_end else _AFTER_HANGUL)
        for (latin_start, latin_end), trie in sorted(tries.items())
    ]
    return re.compile("|".join(pieces))


def _atoms(normalised: str) -> list[list[str]]:
    """An alias as atom sequences: its Hangul runs written together, and fully spaced."""
    together: list[str] = []
    spaced: list[str] = []
    for i, part in enumerate(p for p in _SEPARATORS.split(normalised) if p):
        if i:
            together.append(_SEP_ANY)
            spaced.append(_SEP_ANY)
        for j, char in enumerate(part):
            if j and _HANGUL_CHAR.match(char) and _HANGUL_CHAR.match(part[j - 1]):
                spaced.append(_SEP_SOME)
            together.append(char)
            spaced.append(char)
    return [together] if spaced == together else [together, spaced]


def _trie_pattern(node: _Trie) -> str:
    """The regex of a trie node; ending here is tried last, so longer names win."""
    alternatives = [
        _ATOM_PATTERNS.get(atom, re.escape(atom)) + _trie_pattern(child)
        for atom, child in sorted(node.items())
        if atom != _END
    ]
    if _END in node:
        alternatives.append("")
    if len(alternatives) == 1:
        return alternatives[0]
    return f"(?:{'|'.join(alternatives)})"


def _entry(path: Path, index: int, item: Any) -> ProtectedIdentity:
    """One YAML entry as a ProtectedIdentity; ValueError naming the entry when it is wrong."""
    label = f"{path}: entry {index}"
    if not isinstance(item, dict):
        raise ValueError(f"{label}: expected a mapping with name, aliases and kinds")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{label}: `name` must be a non-empty string")
    label = f"{label} ({name!r})"
    unknown = set(item) - {"name", "aliases", "kinds"}
    if unknown:
        raise ValueError(f"{label}: unknown fields {sorted(unknown)}")
    aliases = _strings(label, "aliases", item.get("aliases", []))
    kinds = _strings(label, "kinds", item.get("kinds", list(KINDS)))
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"{label}: `kinds` must be a non-empty list of {', '.join(KINDS)}")
    identity = ProtectedIdentity(name.strip(), tuple(aliases), frozenset(kinds))  # type: ignore[arg-type]
    try:
        _names(identity)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None
    return identity


def _strings(label: str, field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{label}: `{field}` must be a list of strings")
    return [v.strip() for v in value]

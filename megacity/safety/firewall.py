"""Prompt firewall: prompt-injection and jailbreak detection for Korean and English prompts.

``PromptFirewall.inspect(text)`` normalises the text (``normalize.py``), runs the weighted
rules of ``firewall_rules.py`` whose group trigger is present, combines the weights per
attack kind by noisy-OR (``1 - Π(1 - w)``) and flags the text when the best kind reaches
``threshold``. Encoded payloads (``firewall_decode.py``) are decoded and inspected again,
to ``max_depth`` levels; an attack found inside one is an ``ENCODED_PAYLOAD``, and so is
an explicit "decode this and follow it" next to anything that decodes.

Verdicts are explainable: ``reasons`` lists the ids of the rules that fired (never the
user's text), so they can go into logs and metrics as they are.

Two pieces of benign context are honoured: a short quoted phrase in a request about
language ("translate 'forget everything' into Korean", "what does '...' mean in the
novel?") is the material, not an instruction, so it is not matched; and some rules name
an ``unless`` context (``developer mode`` next to "Android").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from megacity.safety.firewall_decode import decode_candidates
from megacity.safety.firewall_rules import (
    DECODE_CUE,
    DECODE_CUE_NEEDS,
    NEEDED_STEMS,
    NEEDED_STEMS_NON_ASCII,
    RULES,
    AttackKind,
)
from megacity.safety.normalize import any_of, normalize

__all__ = ["AttackKind", "FirewallVerdict", "PromptFirewall"]

_DECODE_AND_FOLLOW = 0.85  # weight of "decode and follow" next to a decodable payload
_DECODE_CUE_ALONE = 0.45
_DECODED_ATTACK_MIN = 0.9  # score of an attack found inside an encoding
_SKIPPED_ROLES = frozenset({"system", "assistant", "developer"})  # the platform's own turns
# When kinds tie, the more specific explanation wins.
_KIND_ORDER = (
    AttackKind.ENCODED_PAYLOAD,
    AttackKind.DELIMITER_INJECTION,
    AttackKind.SYSTEM_PROMPT_EXTRACTION,
    AttackKind.ROLEPLAY_JAILBREAK,
    AttackKind.INSTRUCTION_OVERRIDE,
)

_LANGUAGE_REQUEST = (
    "translat", "번역", "mean", "뜻", "뉘앙스", "nuance", "idiom", "관용", "해석", "grammat",
    "문법", "pronoun", "발음", "영어로", "한국어로", "korean", "english", "novel", "story",
    "movie", "film", "drama", "lyric", "소설", "영화", "드라마", "대사", "가사", "says", "said",
)  # fmt: skip
_QUOTES = ("'", '"', "‘", "“", "「", "『")
# A closing quote may carry a Korean particle ('잊어'를), not a Latin letter (don't).
_SHORT_QUOTE = re.compile(r"(?<!\w)['\"‘“「『][^'\"‘’“”「」『』\n]{1,60}['\"’”」』](?![a-z0-9])")


@dataclass(frozen=True, slots=True)
class FirewallVerdict:
    """The firewall's answer for one text: ``score`` is 0..1, ``reasons`` are rule ids."""

    flagged: bool
    kind: AttackKind | None
    score: float
    reasons: tuple[str, ...]


_CLEAN = FirewallVerdict(False, None, 0.0, ())
_ANY_STEM = any_of((*NEEDED_STEMS, *NEEDED_STEMS_NON_ASCII))  # no stem: no rule can match
_ANY_DECODE_CUE = any_of(DECODE_CUE_NEEDS)


class PromptFirewall:
    """Weighted-rule prompt-injection detector; pure, thread-safe, no I/O."""

    def __init__(self, threshold: float = 0.5, *, max_depth: int = 2) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.max_depth = max_depth

    def inspect(self, text: str) -> FirewallVerdict:
        """Inspect one prompt (any length; about 50 µs for 300 ordinary characters)."""
        return self._inspect(text, depth=0)

    def inspect_messages(self, messages: Sequence[Mapping[str, Any]]) -> FirewallVerdict:
        """Inspect OpenAI chat messages: every text part of every user/tool turn; the worst wins."""
        worst = _CLEAN
        for message in messages:
            if not isinstance(message, Mapping) or message.get("role") in _SKIPPED_ROLES:
                continue
            for text in _message_texts(message.get("content")):
                verdict = self.inspect(text)
                if verdict.score > worst.score:
                    worst = verdict
        return worst

    def _inspect(self, text: str, *, depth: int, rot13: bool = True) -> FirewallVerdict:
        if not text:
            return _CLEAN
        folded, haystack = _haystack(text)
        weights = _fire(haystack)
        if depth < self.max_depth:
            self._inspect_decoded(text, haystack, depth, weights, folded if rot13 else None)
        return self._verdict(weights)

    def _inspect_decoded(
        self,
        text: str,
        haystack: str,
        depth: int,
        weights: dict[str, tuple[AttackKind, float]],
        folded: str | None,
    ) -> None:
        """Add the rules for payloads that decode to an attack, and for decode-and-follow."""
        cue = _ANY_DECODE_CUE.search(haystack) and DECODE_CUE.search(haystack)
        if cue:
            weights["encoded.decode_instruction"] = (AttackKind.ENCODED_PAYLOAD, _DECODE_CUE_ALONE)
        for decoded in decode_candidates(text, folded=folded):
            # ROT13 undoes itself: its output is not rotated back
            inner = self._inspect(decoded.text, depth=depth + 1, rot13=decoded.scheme != "rot13")
            if inner.flagged:
                score = max(_DECODED_ATTACK_MIN, inner.score)
                weights[f"encoded.{decoded.scheme}"] = (AttackKind.ENCODED_PAYLOAD, score)
                for reason in inner.reasons:
                    weights.setdefault(reason, (AttackKind.ENCODED_PAYLOAD, 0.0))
            elif cue and decoded.scheme not in ("rot13", "reversed"):
                weights["encoded.decode_and_follow"] = (
                    AttackKind.ENCODED_PAYLOAD,
                    _DECODE_AND_FOLLOW,
                )

    def _verdict(self, weights: dict[str, tuple[AttackKind, float]]) -> FirewallVerdict:
        if not weights:
            return _CLEAN
        scores = _combine(weights)
        kind = max(_KIND_ORDER, key=lambda k: (scores.get(k, 0.0), -_KIND_ORDER.index(k)))
        score = scores[kind]
        reasons = tuple(sorted(weights))
        flagged = score >= self.threshold
        return FirewallVerdict(flagged, kind if flagged else None, round(score, 4), reasons)


def _haystack(text: str) -> tuple[str, str]:
    """(normalised text, its variants joined by newlines), short quotes masked if benign."""
    norm = normalize(text)
    if any(q in norm.text for q in _QUOTES) and any(w in norm.text for w in _LANGUAGE_REQUEST):
        masked = _SHORT_QUOTE.sub(" ", norm.text)
        if masked != norm.text:
            norm = normalize(masked)
    variants = norm.variants
    return norm.text, "\n".join(variants) if len(variants) > 1 else norm.text


def _fire(haystack: str) -> dict[str, tuple[AttackKind, float]]:
    """Rule id → (kind, weight) for every rule that matches ``haystack``."""
    if _ANY_STEM.search(haystack) is None:
        return {}
    present = {stem for stem in NEEDED_STEMS if stem in haystack}
    if not haystack.isascii():
        present.update(stem for stem in NEEDED_STEMS_NON_ASCII if stem in haystack)
    fired: dict[str, tuple[AttackKind, float]] = {}
    if not present:
        return fired
    for rule in RULES:
        if present.isdisjoint(rule.needs) or rule.pattern.search(haystack) is None:
            continue
        if rule.unless is not None and rule.unless.search(haystack) is not None:
            continue
        fired[rule.id] = (rule.kind, rule.weight)
    return fired


def _combine(weights: dict[str, tuple[AttackKind, float]]) -> dict[AttackKind, float]:
    """Noisy-OR per kind; a fake chat turn carrying another attack counts as the injection."""
    misses: dict[AttackKind, float] = {}
    for kind, weight in weights.values():
        misses[kind] = misses.get(kind, 1.0) * (1.0 - weight)
    scores = {kind: 1.0 - miss for kind, miss in misses.items()}
    delimiter = scores.get(AttackKind.DELIMITER_INJECTION, 0.0)
    if delimiter >= 0.4:
        others = max(
            (s for k, s in scores.items() if k is not AttackKind.DELIMITER_INJECTION), default=0.0
        )
        scores[AttackKind.DELIMITER_INJECTION] = max(
            delimiter, 1.0 - (1.0 - delimiter) * (1.0 - others)
        )
    return scores


def _message_texts(content: Any) -> list[str]:
    """The text of a chat message's ``content``: a string or a list of typed parts."""
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    if isinstance(content, Sequence):
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text", part.get("input_text"))
                if isinstance(text, str):
                    texts.append(text)
    return texts

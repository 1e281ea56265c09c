"""Pronunciation assessment: a reference text and what the recogniser heard → scores and detail.

Both texts are normalised per language (``textnorm``: NFKC, case, punctuation, numbers
spelled out) and cut into comparison units: English words; Korean syllables, compared
across spaces so spacing is never an error; Japanese and Chinese characters (a small
kana joins the kana before it). The unit sequences are aligned by edit distance with a
backtrace (``alignment``); each reference word gets the pairs of its own units, and
words heard between reference words become ``insertion`` entries.

Unit similarity, 0..1: English, letters: 1 − Levenshtein distance / longer length, a
word sharing less than half (dog/fox) counting as another word (omission + insertion);
Korean, jamo: equal 초성/중성/종성 / jamo present (좋/존 2/3, 커/거 1/2); Japanese:
characters compared decomposed, so a voicing mark alone (か/が) is half right; Chinese:
equal or not.

Scores, 0–100, one decimal:

* word accuracy = 100 × (sum of unit similarities) / max(reference units, heard units)
  × confidence factor. The factor is ``1 − 0.2 · max(0, 0.6 − p) / 0.6`` for Whisper's
  word probability p (1 without timings): a word heard exactly but with p = 0.3 scores 90,
  because the recogniser hesitated over it. Omitted and inserted words score 0.
* accuracy = mean word accuracy over what was spoken: the reference words not omitted
  and the inserted words (an extra word lowers accuracy). 0 when nothing was spoken.
* completeness = 100 × (reference words not omitted) / (reference words).
* fluency (``fluency`` module) needs word timings; without them it is None, because text
  alone shows neither speed nor pauses. With them it combines pause time beyond the
  mode's tolerance and speech rate; singalong ignores silence and scores rate leniently.
* prosody P (shadowing and singalong against a reference recording: intonation, pauses
  and pace, or pitch and rhythm; ``scoring.prosody``, ``scoring.pitch``) is given by the
  caller, None otherwise.
* overall = C/100 · (wA · A + wF · F + wP · P) + wC · C, for accuracy A, fluency F,
  prosody P and completeness C: accuracy, fluency and prosody describe only the share of
  the text that was spoken, so they count in that proportion (one perfect word out of
  thirty: 3.3, not 80). Weights (wA, wF, wP, wC) per mode (``MODE_WEIGHTS``): read
  0.6 / 0.2 / – / 0.2, shadowing 0.45 / 0.15 / 0.2 / 0.2, singalong 0.3 / 0.1 / 0.4 / 0.2;
  without prosody, 0.6 / 0.2 / – / 0.2 in every mode. A missing score's weight is shared
  out among the others in proportion.
  Without fluency: C/100 · 0.75 · A + 0.25 · C.

``unexpected_break`` marks a word after longer silence than the mode allows (read 0.7 s
mid-phrase and 2 s at punctuation, shadowing 1 s and 2.5 s, singalong never);
``missing_break`` (read) a word after a sentence end with under 0.05 s of silence.
``cer`` = character edit distance / reference characters (normalised; Korean without
spaces); ``wer`` = word edit distance / reference words, where Korean counts each
reference word not heard exactly plus each inserted word. Both are ratios, not percent.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import numpy as np
from rapidfuzz.distance import Levenshtein

from . import textnorm
from .alignment import Group, SimilarityMatrix, align, char_similarity, group_by_word
from .fluency import DEFAULT_MODES, DEFAULT_RATES, Break, ModeProfile, RateBand, TimedEntry, judge
from .korean import JamoDifference, compare_syllables, jamo_similarity
from .languages import MODES
from .textnorm import RefWord

MAX_TEXT_CHARS = 5000  # per text; beyond it the request is refused, not truncated
MAX_WORDS = 2000  # recognised word timings per request

ErrorType = Literal["none", "mispronunciation", "omission", "insertion"]


@dataclass(frozen=True, slots=True)
class RecognizedWord:
    """One word from the recogniser (Whisper word timestamps): seconds and probability 0..1."""

    word: str
    start: float
    end: float
    probability: float = 1.0


# (accuracy, fluency, prosody, completeness) weights of overall, per mode, with a prosody score.
MODE_WEIGHTS: Mapping[str, tuple[float, float, float, float]] = MappingProxyType(
    {
        "read": (0.6, 0.2, 0.0, 0.2),
        "shadowing": (0.45, 0.15, 0.2, 0.2),
        "singalong": (0.3, 0.1, 0.4, 0.2),
    }
)


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """Weights and thresholds; the defaults are the documented formulas."""

    accuracy_weight: float = 0.6
    fluency_weight: float = 0.2
    completeness_weight: float = 0.2
    confidence_floor: float = 0.6  # Whisper probability below which exact words lose accuracy
    confidence_max_penalty: float = 0.2  # share of accuracy lost at probability 0
    prosody_weights: Mapping[str, tuple[float, float, float, float]] = field(
        default_factory=lambda: MODE_WEIGHTS
    )
    modes: Mapping[str, ModeProfile] = field(default_factory=lambda: DEFAULT_MODES)
    rates: Mapping[str, RateBand] = field(default_factory=lambda: DEFAULT_RATES)


@dataclass(frozen=True, slots=True)
class SyllableResult:
    """One Korean syllable of a word, compared jamo by jamo."""

    reference: str | None
    recognized: str | None
    accuracy: float
    error_type: ErrorType
    differences: tuple[JamoDifference, ...] = ()


@dataclass(frozen=True, slots=True)
class WordResult:
    """One reference word, or one inserted word (``reference`` None); times in seconds."""

    reference: str | None
    recognized: str | None  # normalised form that was compared ("3" heard → "three")
    error_type: ErrorType
    accuracy: float
    start: float | None = None
    end: float | None = None
    confidence: float | None = None
    pause_before: float | None = None
    unexpected_break: bool = False
    missing_break: bool = False
    syllables: tuple[SyllableResult, ...] = ()


@dataclass(frozen=True, slots=True)
class Scores:
    """The headline scores, 0–100; fluency is None without word timings, prosody without
    a reference recording (and in read mode)."""

    accuracy: float
    completeness: float
    fluency: float | None
    overall: float
    prosody: float | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    """Result of one attempt: scores, error rates (ratios) and per-word detail in order."""

    language: str
    mode: str
    scores: Scores
    cer: float
    wer: float
    words: tuple[WordResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain dicts and lists."""
        plain = _plain(self)
        assert isinstance(plain, dict)
        return plain


class _Heard(NamedTuple):
    """One recognised unit with the timing of the recognised word it came from."""

    text: str
    group: int  # insertions between words are reported per group (a recognised word)
    start: float | None
    end: float | None
    probability: float | None


def _kana_similarity(ref: Sequence[str], hyp: Sequence[str]) -> np.ndarray:
    # Decomposed, が is か + a voicing mark: a voicing slip costs half a character.
    nfd = [unicodedata.normalize("NFD", u) for u in ref]
    return char_similarity(nfd, [unicodedata.normalize("NFD", u) for u in hyp])


_SIMILARITY: dict[str, SimilarityMatrix] = {
    "en": char_similarity,
    "ko": jamo_similarity,
    "ja": _kana_similarity,
    "zh": char_similarity,
}
# Below half the letters shared, an English word is another word, not a mispronunciation
# ("dog" for "fox"); one Korean jamo in three is still worth naming (좋 → 전).
_MIN_SIMILARITY = {"en": 0.5, "ko": 0.3, "ja": 0.5, "zh": 0.5}


def assess(
    reference_text: str,
    transcript: str,
    language: str,
    mode: str = "read",
    words: Sequence[RecognizedWord] | None = None,
    config: ScoringConfig | None = None,
    prosody: float | None = None,
) -> Assessment:
    """Score an attempt; with ``words`` (Whisper timings) they, not transcript, are what was heard.

    ``prosody`` (0–100, from ``scoring.prosody`` or ``scoring.pitch``) counts in overall
    with the mode's weights.
    """
    cfg = config or ScoringConfig()
    if prosody is not None and not (math.isfinite(prosody) and 0.0 <= prosody <= 100.0):
        raise ValueError("prosody must be within 0..100")
    _check_input(reference_text, transcript, language, mode, words)
    # Numbers with several readings: the reference's as the learner said them, then what
    # was heard as the reference says it (textnorm, spoken_forms).
    first_heard = [h.text for h in _heard_units(transcript, words, language, None)]
    ref_words = textnorm.reference_words(reference_text, language, first_heard)
    if not ref_words:
        raise ValueError("reference_text has no words to score")
    ref_units = [u for w in ref_words for u in w.units]
    heard = _heard_units(transcript, words, language, ref_units)
    heard_units = [h.text for h in heard]
    unit_word = [index for index, w in enumerate(ref_words) for _ in w.units]
    pairs = align(ref_units, heard_units, _SIMILARITY[language], _MIN_SIMILARITY[language])
    groups = group_by_word(pairs, unit_word, [h.group for h in heard])
    spans = [_span(g, heard) for g in groups]
    fluency: float | None = None
    breaks = [Break()] * len(groups)
    if words:
        entries = [
            TimedEntry(g.word, s.start, s.end, s.units) for g, s in zip(groups, spans, strict=True)
        ]
        boundaries = [w.boundary_after for w in ref_words]
        profile, band = cfg.modes[mode], cfg.rates[language]
        breaks, fluency = judge(entries, boundaries, profile, band)
    context = _Context(ref_words, ref_units, heard, language, cfg)
    scored = [_word_result(context, *entry) for entry in zip(groups, spans, breaks, strict=True)]
    results = [result for result, _ in scored]
    return Assessment(
        language=language,
        mode=mode,
        scores=_scores(
            [raw for _, raw in scored], results, len(ref_words), fluency, prosody, mode, cfg
        ),
        cer=_cer(ref_units, heard_units, language),
        wer=_wer(ref_units, heard_units, results, language),
        words=tuple(results),
    )


def _check_input(
    reference_text: str,
    transcript: str,
    language: str,
    mode: str,
    words: Sequence[RecognizedWord] | None,
) -> None:
    textnorm.check_language(language)
    if mode not in MODES:
        raise ValueError(f"unsupported mode {mode!r}; expected one of {MODES}")
    for name, text in (("reference_text", reference_text), ("transcript", transcript)):
        if not isinstance(text, str):
            raise ValueError(f"{name} must be a string")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"{name} is longer than {MAX_TEXT_CHARS} characters")
    if words is None:
        return
    if len(words) > MAX_WORDS:
        raise ValueError(f"more than {MAX_WORDS} recognised words")
    if sum(len(w.word) for w in words) > MAX_TEXT_CHARS:
        raise ValueError(f"recognised words are longer than {MAX_TEXT_CHARS} characters")
    for w in words:
        if not (math.isfinite(w.start) and math.isfinite(w.end) and 0 <= w.start <= w.end):
            raise ValueError(f"word {w.word!r} needs 0 <= start <= end, finite seconds")
        if not 0.0 <= w.probability <= 1.0:
            raise ValueError(f"word {w.word!r} has probability outside 0..1")


def _heard_units(
    transcript: str,
    words: Sequence[RecognizedWord] | None,
    language: str,
    reference: Sequence[str] | None,
) -> list[_Heard]:
    """Recognised units; a recognised word's time is shared evenly among its units."""
    # Korean insertions are grouped per spoken word (eojeol); elsewhere per written token.
    by_origin = language == "ko"
    if not words:
        units = textnorm.units(transcript.split(), language, reference=reference)
        return [_Heard(u.text, u.origin if by_origin else u.token, None, None, None) for u in units]
    # Spaced languages get a separator in case a client strips Whisper's leading spaces.
    sep = " " if language in ("en", "ko") else ""
    units = textnorm.units([w.word for w in words], language, sep=sep, reference=reference)
    per_word = Counter(u.origin for u in units)
    seen: Counter[int] = Counter()
    heard = []
    for u in units:
        w = words[u.origin]
        share = (w.end - w.start) / per_word[u.origin]
        start = w.start + share * seen[u.origin]
        seen[u.origin] += 1
        group = u.origin if by_origin else u.token
        heard.append(_Heard(u.text, group, start, start + share, w.probability))
    return heard


class _Span(NamedTuple):
    """When a group was heard (seconds), how surely, and how many units were heard."""

    start: float | None
    end: float | None
    confidence: float | None
    units: int


@dataclass(frozen=True, slots=True)
class _Context:
    ref_words: Sequence[RefWord]
    ref_units: Sequence[str]
    heard: Sequence[_Heard]
    language: str
    cfg: ScoringConfig


def _span(group: Group, heard: Sequence[_Heard]) -> _Span:
    got = [heard[p.hyp] for p in group.pairs if p.hyp is not None]
    starts = [h.start for h in got if h.start is not None]
    ends = [h.end for h in got if h.end is not None]
    probabilities = [h.probability for h in got if h.probability is not None]
    return _Span(
        start=min(starts) if starts else None,
        end=max(ends) if ends else None,
        confidence=sum(probabilities) / len(probabilities) if probabilities else None,
        units=len(got),
    )


def _word_result(
    context: _Context, group: Group, span: _Span, pause: Break
) -> tuple[WordResult, float]:
    """The entry for one group, and its unrounded accuracy 0–100."""
    got = [context.heard[p.hyp].text for p in group.pairs if p.hyp is not None]
    error: ErrorType
    if group.word is None:
        reference, error, accuracy = None, "insertion", 0.0
    elif not got:
        reference, error, accuracy = context.ref_words[group.word].text, "omission", 0.0
    else:
        reference = context.ref_words[group.word].text
        # Like a normalised edit distance: a slot counts once even if omitted and re-inserted.
        ref_count = sum(1 for p in group.pairs if p.ref is not None)
        similarity = sum(p.similarity for p in group.pairs) / max(ref_count, len(got))
        accuracy = 100.0 * similarity * _confidence_factor(span.confidence, context.cfg)
        exact = all(p.op == "equal" for p in group.pairs)
        error = "none" if exact else "mispronunciation"
    korean = context.language == "ko"
    result = WordResult(
        reference=reference,
        recognized=(" " if context.language == "en" else "").join(got) or None,
        error_type=error,
        accuracy=round(accuracy, 1),
        start=_round(span.start, 3),
        end=_round(span.end, 3),
        confidence=_round(span.confidence, 3),
        pause_before=pause.pause_before,
        unexpected_break=pause.unexpected,
        missing_break=pause.missing,
        syllables=_syllables(group, context.ref_units, context.heard) if korean else (),
    )
    return result, accuracy


def _confidence_factor(probability: float | None, cfg: ScoringConfig) -> float:
    if probability is None or cfg.confidence_floor <= 0:
        return 1.0
    shortfall = max(0.0, cfg.confidence_floor - probability) / cfg.confidence_floor
    return 1.0 - cfg.confidence_max_penalty * shortfall


def _syllables(
    group: Group, ref_units: Sequence[str], heard: Sequence[_Heard]
) -> tuple[SyllableResult, ...]:
    out = []
    for pair in group.pairs:
        ref = ref_units[pair.ref] if pair.ref is not None else None
        got = heard[pair.hyp].text if pair.hyp is not None else None
        if ref is None:
            out.append(SyllableResult(None, got, 0.0, "insertion"))
        elif got is None:
            out.append(SyllableResult(ref, None, 0.0, "omission"))
        elif pair.op == "equal":
            out.append(SyllableResult(ref, got, 100.0, "none"))
        else:
            _, differences = compare_syllables(ref, got)
            accuracy = round(100.0 * pair.similarity, 1)
            out.append(SyllableResult(ref, got, accuracy, "mispronunciation", differences))
    return tuple(out)


def _scores(
    raw_accuracy: Sequence[float],
    results: Sequence[WordResult],
    n_reference: int,
    fluency: float | None,
    prosody: float | None,
    mode: str,
    cfg: ScoringConfig,
) -> Scores:
    spoken = [a for a, r in zip(raw_accuracy, results, strict=True) if r.error_type != "omission"]
    accuracy = sum(spoken) / len(spoken) if spoken else 0.0
    omitted = sum(1 for r in results if r.error_type == "omission")
    completeness = 100.0 * (n_reference - omitted) / n_reference
    if prosody is not None and mode in cfg.prosody_weights:
        weights = cfg.prosody_weights[mode]
    else:
        weights = (cfg.accuracy_weight, cfg.fluency_weight, 0.0, cfg.completeness_weight)
    values = (accuracy, fluency, prosody, completeness)
    present = [(w, v) for w, v in zip(weights, values, strict=True) if v is not None]
    total = sum(w for w, _ in present) or 1.0
    w_a, w_f, w_p, w_c = (
        w / total if v is not None else 0.0 for w, v in zip(weights, values, strict=True)
    )
    spoken_share = completeness / 100.0
    overall = (spoken_share * (w_a * accuracy + w_f * (fluency or 0.0) + w_p * (prosody or 0.0))
               + w_c * completeness)  # fmt: skip
    return Scores(
        accuracy=round(accuracy, 1),
        completeness=round(completeness, 1),
        fluency=_round(fluency, 1),
        prosody=_round(prosody, 1),
        overall=round(overall, 1),
    )


def _cer(ref_units: Sequence[str], heard: Sequence[str], language: str) -> float:
    joiner = " " if language == "en" else ""
    reference = joiner.join(ref_units)
    return round(Levenshtein.distance(reference, joiner.join(heard)) / len(reference), 4)


def _wer(
    ref_units: Sequence[str], heard: Sequence[str], results: Sequence[WordResult], language: str
) -> float:
    if language != "ko":
        return round(Levenshtein.distance(ref_units, heard) / len(ref_units), 4)
    # Korean words are compared across spacing: each word not heard exactly, and each
    # inserted word, is one error.
    errors = sum(1 for r in results if r.error_type != "none")
    return round(errors / sum(1 for r in results if r.reference is not None), 4)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _plain(value: Any) -> Any:
    """Dataclasses → dicts, tuples → lists, recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value

"""Edit-distance alignment of reference units against recognised units, with a backtrace.

rapidfuzz's Levenshtein opcodes (C++, unit costs) find the runs that match exactly; each
stretch between two matching runs is then re-aligned by a similarity-weighted dynamic
programme so that a mispronounced unit is paired with the unit it most resembles:

* substituting ``r`` by ``h`` costs ``2 · (1 − similarity(r, h))``; omitting or inserting costs 1;
* so a pair that shares nothing (similarity 0) costs as much as an omission plus an
  insertion, and is reported that way: "cat" read for "dog" is not a mispronounced "dog";
  similarities below ``min_similarity`` count as nothing shared ("fox" for "dog" share an o).

Reordered text therefore costs omissions and insertions (or substitutions), never a
bonus for the letters it shares, unlike ``difflib.SequenceMatcher.ratio``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

Op = Literal["equal", "substitute", "delete", "insert"]
SimilarityMatrix = Callable[[Sequence[str], Sequence[str]], np.ndarray]

# Above this many cells a differing stretch is paired in order instead (bounded time/memory).
MAX_DP_CELLS = 4_000_000
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Pair:
    """One alignment step: ref/hyp are unit indices (None on the side that has no unit)."""

    op: Op
    ref: int | None
    hyp: int | None
    similarity: float


@dataclass(frozen=True, slots=True)
class Group:
    """Consecutive pairs that belong to one reference word (``word`` None: an insertion)."""

    word: int | None
    pairs: tuple[Pair, ...]


def char_similarity(ref: Sequence[str], hyp: Sequence[str]) -> np.ndarray:
    """Similarity matrix 0..1: 1 − Levenshtein distance / length of the longer string."""
    return cdist(list(ref), list(hyp), scorer=Levenshtein.normalized_similarity, dtype=np.float64)


def align(
    ref: Sequence[str],
    hyp: Sequence[str],
    similarity: SimilarityMatrix = char_similarity,
    min_similarity: float = 0.0,
) -> list[Pair]:
    """Align two unit sequences; every ref and every hyp index appears exactly once, in order."""
    pairs: list[Pair] = []
    for tag, r1, r2, h1, h2 in _stretches(ref, hyp):
        if tag == "equal":
            pairs.extend(Pair("equal", r1 + k, h1 + k, 1.0) for k in range(r2 - r1))
        else:
            stretch = _align_stretch(ref[r1:r2], hyp[h1:h2], r1, h1, similarity, min_similarity)
            pairs.extend(stretch)
    return pairs


def _stretches(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str, int, int, int, int]]:
    """Opcodes with neighbouring non-equal ones merged into one stretch to re-align."""
    merged: list[tuple[str, int, int, int, int]] = []
    for op in Levenshtein.opcodes(list(ref), list(hyp)):
        tag = "equal" if op.tag == "equal" else "differ"
        if merged and merged[-1][0] == tag == "differ":
            _, r1, _, h1, _ = merged[-1]
            merged[-1] = (tag, r1, op.src_end, h1, op.dest_end)
        else:
            merged.append((tag, op.src_start, op.src_end, op.dest_start, op.dest_end))
    return merged


def _align_stretch(
    ref: Sequence[str],
    hyp: Sequence[str],
    r0: int,
    h0: int,
    similarity: SimilarityMatrix,
    min_similarity: float,
) -> list[Pair]:
    n, m = len(ref), len(hyp)
    if n == 0 or m == 0:
        return [Pair("delete", r0 + i, None, 0.0) for i in range(n)] + [
            Pair("insert", None, h0 + j, 0.0) for j in range(m)
        ]
    if n * m > MAX_DP_CELLS:
        return _pair_in_order(ref, hyp, r0, h0, similarity, min_similarity)
    sim = similarity(ref, hyp)
    sim = np.where(sim >= min_similarity, sim, 0.0)
    return _backtrace(_cost_table(2.0 * (1.0 - sim)), sim, r0, h0)


def _cost_table(sub_cost: np.ndarray) -> np.ndarray:
    """Full DP table, one vectorised row at a time."""
    n, m = sub_cost.shape
    table = np.empty((n + 1, m + 1))
    ramp = np.arange(m + 1, dtype=np.float64)
    table[0] = ramp
    row = np.empty(m + 1)
    for i in range(1, n + 1):
        prev = table[i - 1]
        row[0] = i
        np.minimum(prev[1:] + 1.0, prev[:-1] + sub_cost[i - 1], out=row[1:])
        # Insertions chain along the row: D[j] = min_k (row[k] + j - k), a running minimum.
        table[i] = np.minimum.accumulate(row - ramp) + ramp
    return table


def _backtrace(table: np.ndarray, sim: np.ndarray, r0: int, h0: int) -> list[Pair]:
    i, j = sim.shape
    steps: list[Pair] = []
    while i > 0 or j > 0:
        here = table[i, j]
        s = sim[i - 1, j - 1] if i and j else 0.0
        # Ties between a zero-similarity substitution and delete+insert go to delete+insert;
        # trying insert before delete makes the forward order "omission, then insertion".
        if s > 0 and abs(table[i - 1, j - 1] + 2.0 * (1.0 - s) - here) < _EPS:
            steps.append(Pair("substitute", r0 + i - 1, h0 + j - 1, float(s)))
            i, j = i - 1, j - 1
        elif j and abs(table[i, j - 1] + 1.0 - here) < _EPS:
            steps.append(Pair("insert", None, h0 + j - 1, 0.0))
            j -= 1
        else:
            steps.append(Pair("delete", r0 + i - 1, None, 0.0))
            i -= 1
    steps.reverse()
    return steps


def _pair_in_order(
    ref: Sequence[str],
    hyp: Sequence[str],
    r0: int,
    h0: int,
    similarity: SimilarityMatrix,
    min_similarity: float,
) -> list[Pair]:
    """Fallback for huge stretches: pair k-th with k-th, the rest omitted or inserted."""
    pairs: list[Pair] = []
    for k in range(min(len(ref), len(hyp))):
        s = float(similarity(ref[k : k + 1], hyp[k : k + 1])[0, 0])
        if s > 0 and s >= min_similarity:
            pairs.append(Pair("substitute", r0 + k, h0 + k, s))
        else:
            pairs += [Pair("delete", r0 + k, None, 0.0), Pair("insert", None, h0 + k, 0.0)]
    tail = min(len(ref), len(hyp))
    pairs += [Pair("delete", r0 + i, None, 0.0) for i in range(tail, len(ref))]
    pairs += [Pair("insert", None, h0 + j, 0.0) for j in range(tail, len(hyp))]
    return pairs


def group_by_word(
    pairs: Sequence[Pair], ref_word: Sequence[int], hyp_group: Sequence[int]
) -> list[Group]:
    """Gather pairs per reference word (ref_word[unit] = word index).

    An insertion belongs to a word when it falls inside the word's units, or next to
    them and from the same recognised word (hyp_group[unit], non-decreasing): 커피만 heard
    for 커피를 is one word with a wrong particle. Other insertions form their own groups,
    one per recognised word.
    """
    runs: list[tuple[tuple[int | None, int], list[Pair]]] = []
    for pair, owner in zip(pairs, _owners(pairs, ref_word, hyp_group), strict=True):
        key = (owner, -1) if owner is not None else (None, hyp_group[pair.hyp or 0])
        if runs and runs[-1][0] == key:
            runs[-1][1].append(pair)
        else:
            runs.append((key, [pair]))
    return [Group(key[0], tuple(run)) for key, run in runs]


def _owners(
    pairs: Sequence[Pair], ref_word: Sequence[int], hyp_group: Sequence[int]
) -> list[int | None]:
    """Reference word of each pair; None for insertions that belong to no word."""
    owners = [ref_word[p.ref] if p.ref is not None else None for p in pairs]
    before = _neighbours(pairs, owners, hyp_group)
    after = _neighbours(pairs[::-1], owners[::-1], hyp_group)[::-1]
    result = list(owners)
    for index, pair in enumerate(pairs):
        if owners[index] is not None or pair.hyp is None:
            continue
        group = hyp_group[pair.hyp]
        (prev_word, prev_group), (next_word, next_group) = before[index], after[index]
        if prev_word is not None and (prev_word == next_word or prev_group == group):
            result[index] = prev_word
        elif next_word is not None and next_group == group:
            result[index] = next_word
    return result


def _neighbours(
    pairs: Sequence[Pair], owners: Sequence[int | None], hyp_group: Sequence[int]
) -> list[tuple[int | None, int | None]]:
    """For each pair: the last word seen before it and the group of that word's nearest heard unit."""
    seen: list[tuple[int | None, int | None]] = []
    word: int | None = None
    group: int | None = None
    for pair, owner in zip(pairs, owners, strict=True):
        seen.append((word, group))
        if owner is None:
            continue
        if owner != word:
            word, group = owner, None
        if pair.hyp is not None:
            group = hyp_group[pair.hyp]
    return seen

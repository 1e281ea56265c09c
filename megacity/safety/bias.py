"""Bias monitoring: does an AI result's accuracy differ between demographic groups?

For one dimension (age band, first language, region, gender) each group is compared
with all the other groups together by a pooled two-proportion z-test; the p-values of
a dimension's tested groups are corrected with Holm–Bonferroni, so looking at many
groups does not by itself produce a finding. A dimension is *flagged* when some group
is both significantly different AND below the four-fifths rule: its accuracy is less
than ``disparity_threshold`` (0.8) times the best tested group's. Significance alone is
not enough (with enough data a 1-point gap is significant), nor is a low ratio alone
(a small group's ratio is mostly noise).

Pure: counts in, frozen dataclasses out; standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GroupCount:
    """How many results a group judged (`n`) and how many of them were right."""

    group: str
    n: int
    correct: int

    def __post_init__(self) -> None:
        if self.n < 0 or not 0 <= self.correct <= self.n:
            raise ValueError(f"group {self.group!r}: need 0 <= correct <= n, got {self}")

    @property
    def accuracy(self) -> float:
        """correct / n, 0..1 (0.0 for an empty group)."""
        return self.correct / self.n if self.n else 0.0


@dataclass(frozen=True, slots=True)
class GroupStat:
    """One group's accuracy compared with the rest of its dimension."""

    group: str
    n: int
    correct: int
    accuracy: float  # 0..1
    disparity_ratio: float | None  # accuracy / the best tested group's; None when untested
    z: float | None  # group vs the rest, pooled two-proportion z; None when untested
    p_value: float | None  # two-sided, before the Holm correction; None when untested
    significant: bool  # rejected by Holm–Bonferroni at alpha across the tested groups
    tested: bool  # n >= min_samples and the rest >= min_samples


@dataclass(frozen=True, slots=True)
class DimensionReport:
    """Every group of one dimension; `flagged` by the rule in the module docstring."""

    dimension: str
    groups: tuple[GroupStat, ...]
    min_disparity_ratio: float | None  # over the tested groups; None when none is tested
    flagged: bool


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of x1/n1 vs x2/n2: (z, two-sided p-value).

    When every result (or none) was right the proportions cannot differ: (0.0, 1.0).
    """
    if n1 <= 0 or n2 <= 0 or not 0 <= x1 <= n1 or not 0 <= x2 <= n2:
        raise ValueError(f"need n > 0 and 0 <= x <= n, got {x1}/{n1} and {x2}/{n2}")
    pooled = (x1 + x2) / (n1 + n2)
    if pooled <= 0.0 or pooled >= 1.0:
        return 0.0, 1.0
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return z, math.erfc(abs(z) / math.sqrt(2.0))


def holm_rejections(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm–Bonferroni step-down: which hypotheses are rejected at family-wise `alpha`."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    m = len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (m - rank):
            break  # step-down: once one is kept, every larger p-value is kept too
        rejected[index] = True
    return rejected


def analyse(
    dimension: str,
    counts: Sequence[GroupCount],
    *,
    min_samples: int = 30,
    alpha: float = 0.05,
    disparity_threshold: float = 0.8,
) -> DimensionReport:
    """Compare each group of `dimension` with the rest; empty groups (n = 0) are left out."""
    _check_parameters(counts, min_samples, alpha, disparity_threshold)
    groups = [c for c in counts if c.n > 0]
    total_n = sum(c.n for c in groups)
    total_correct = sum(c.correct for c in groups)
    tested = [c.n >= min_samples and total_n - c.n >= min_samples for c in groups]
    tests: dict[int, tuple[float, float]] = {
        i: two_proportion_test(c.correct, c.n, total_correct - c.correct, total_n - c.n)
        for i, c in enumerate(groups)
        if tested[i]
    }
    rejected = dict(zip(tests, holm_rejections([p for _, p in tests.values()], alpha), strict=True))
    best = max((groups[i].accuracy for i in tests), default=None)
    stats = tuple(
        GroupStat(
            group=c.group,
            n=c.n,
            correct=c.correct,
            accuracy=c.accuracy,
            disparity_ratio=_ratio(c.accuracy, best) if i in tests else None,
            z=tests[i][0] if i in tests else None,
            p_value=tests[i][1] if i in tests else None,
            significant=rejected.get(i, False),
            tested=tested[i],
        )
        for i, c in enumerate(groups)
    )
    ratios = [s.disparity_ratio for s in stats if s.disparity_ratio is not None]
    flagged = any(
        s.significant and s.disparity_ratio is not None and s.disparity_ratio < disparity_threshold
        for s in stats
    )
    return DimensionReport(dimension, stats, min(ratios, default=None), flagged)


def _ratio(accuracy: float, best: float | None) -> float:
    # Every tested group at 0 % is no disparity between them: ratio 1.
    return accuracy / best if best else 1.0


def _check_parameters(
    counts: Sequence[GroupCount], min_samples: int, alpha: float, disparity_threshold: float
) -> None:
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, got {min_samples}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < disparity_threshold <= 1.0:
        raise ValueError(f"disparity_threshold must be in (0, 1], got {disparity_threshold}")
    names = [c.group for c in counts]
    if len(set(names)) != len(names):
        raise ValueError(f"a group appears twice in {names}")

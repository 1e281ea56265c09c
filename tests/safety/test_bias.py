"""Bias statistics: the z-test against hand-computed values, Holm, gating, the flag rule."""

from __future__ import annotations

import math

import pytest

from megacity.safety.bias import GroupCount, analyse, holm_rejections, two_proportion_test


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "z", "p"),
    [
        # p_pool = 0.525, se = sqrt(.525 * .475 * (1/100 + 1/100)) = 0.070622
        (45, 100, 60, 100, -2.12398, 0.033672),
        (60, 100, 45, 100, 2.12398, 0.033672),
        # p_pool = 0.3, se = sqrt(.3 * .7 * .04) = 0.091652
        (10, 50, 20, 50, -2.18218, 0.029096),
        # p_pool = 0.7, se = 0.118322: a 20-point gap that 30 + 30 samples cannot show
        (18, 30, 24, 30, -1.69031, 0.090969),
        # unequal sizes: p_pool = 0.8, se = sqrt(.16 * (1/200 + 1/50)) = 0.063246
        (164, 200, 36, 50, 1.58114, 0.113846),
        (50, 100, 50, 100, 0.0, 1.0),
    ],
)
def test_two_proportion_z_test_matches_hand_computed_values(
    x1: int, n1: int, x2: int, n2: int, z: float, p: float
) -> None:
    got_z, got_p = two_proportion_test(x1, n1, x2, n2)
    assert got_z == pytest.approx(z, abs=1e-4)
    assert got_p == pytest.approx(p, abs=1e-5)


@pytest.mark.parametrize(("x1", "x2"), [(0, 0), (40, 60)])
def test_all_wrong_or_all_right_cannot_differ(x1: int, x2: int) -> None:
    assert two_proportion_test(x1, 40, x2, 60) == (0.0, 1.0)


def test_a_huge_gap_gives_a_tiny_but_positive_p_value() -> None:
    z, p = two_proportion_test(1000, 1000, 0, 1000)
    assert z > 40 and 0.0 <= p < 1e-300


@pytest.mark.parametrize(
    "args", [(1, 0, 1, 10), (1, 10, 1, 0), (11, 10, 1, 10), (-1, 10, 1, 10), (1, 10, 11, 10)]
)
def test_bad_counts_are_refused(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        two_proportion_test(*args)


@pytest.mark.parametrize(
    ("p_values", "alpha", "rejected"),
    [
        # sorted .005 <= .05/4, .01 <= .05/3, .03 > .05/2: stop there, .04 is kept too
        ([0.01, 0.04, 0.03, 0.005], 0.05, [True, False, False, True]),
        # Holm rejects all three; plain Bonferroni (.05/3 each) would reject only .01
        ([0.01, 0.02, 0.03], 0.05, [True, True, True]),
        ([0.2, 0.001], 0.05, [False, True]),
        ([0.049], 0.05, [True]),
        ([0.051], 0.05, [False]),
        ([], 0.05, []),
    ],
)
def test_holm_step_down(p_values: list[float], alpha: float, rejected: list[bool]) -> None:
    assert holm_rejections(p_values, alpha) == rejected


def test_the_disparate_group_is_flagged_and_the_small_one_only_reported() -> None:
    counts = [
        GroupCount("ko", 200, 180),  # 90 %
        GroupCount("vi", 200, 140),  # 70 %
        GroupCount("th", 10, 2),  # 20 %, but only 10 answers
    ]
    report = analyse("l1_language", counts)
    by = {g.group: g for g in report.groups}
    assert report.flagged
    assert [g.group for g in report.groups] == ["ko", "vi", "th"]
    vi, ko, th = by["vi"], by["ko"], by["th"]
    assert vi.tested and vi.significant and vi.z is not None and vi.z < 0
    assert vi.disparity_ratio == pytest.approx(0.70 / 0.90)
    assert ko.disparity_ratio == 1.0 and ko.significant  # better than the rest, not flagged
    assert not th.tested and th.z is None and th.p_value is None and th.disparity_ratio is None
    assert not th.significant and th.accuracy == pytest.approx(0.2)
    assert report.min_disparity_ratio == pytest.approx(0.70 / 0.90)
    # vi vs the rest: 140/200 vs 182/210
    z, p = two_proportion_test(140, 200, 182, 210)
    assert vi.z == pytest.approx(z) and vi.p_value == pytest.approx(p)


def test_significant_but_within_four_fifths_is_not_flagged() -> None:
    report = analyse("gender", [GroupCount("female", 5000, 4750), GroupCount("male", 5000, 4500)])
    male = report.groups[1]
    assert male.significant and male.disparity_ratio == pytest.approx(0.90 / 0.95)
    assert not report.flagged


def test_a_low_ratio_that_is_not_significant_is_not_flagged() -> None:
    report = analyse("region", [GroupCount("seoul", 30, 24), GroupCount("busan", 30, 18)])
    busan = report.groups[1]
    assert busan.disparity_ratio == pytest.approx(0.75)
    assert busan.p_value == pytest.approx(0.090969, abs=1e-5) and not busan.significant
    assert not report.flagged


def test_holm_correction_is_applied_across_the_dimension() -> None:
    # k alone would pass at 0.05 against the rest (p ~ 0.019); Holm asks 0.05 / 11 of it.
    counts = [GroupCount(g, 100, 80) for g in "abcdefghij"] + [GroupCount("k", 100, 70)]
    report = analyse("age_band", counts)
    k = report.groups[-1]
    assert k.p_value is not None and 0.05 / 11 < k.p_value < 0.05
    assert not k.significant and not report.flagged
    alone = analyse("age_band", counts, alpha=0.5)
    assert alone.groups[-1].significant


def test_min_samples_gates_the_group_and_the_rest() -> None:
    report = analyse("age_band", [GroupCount("13-15", 100, 90), GroupCount("16-18", 29, 5)])
    assert not any(g.tested for g in report.groups)  # 13-15's rest is only 29
    assert report.min_disparity_ratio is None and not report.flagged
    lowered = analyse(
        "age_band", [GroupCount("13-15", 100, 90), GroupCount("16-18", 29, 5)], min_samples=29
    )
    assert all(g.tested for g in lowered.groups) and lowered.flagged


def test_edge_cases_empty_zero_and_all_correct() -> None:
    assert analyse("gender", []) == analyse("gender", [GroupCount("female", 0, 0)])
    empty = analyse("gender", [])
    assert empty.groups == () and empty.min_disparity_ratio is None and not empty.flagged
    perfect = analyse("gender", [GroupCount("a", 50, 50), GroupCount("b", 60, 60)])
    assert [g.disparity_ratio for g in perfect.groups] == [1.0, 1.0]
    assert [g.p_value for g in perfect.groups] == [1.0, 1.0] and not perfect.flagged
    hopeless = analyse("gender", [GroupCount("a", 50, 0), GroupCount("b", 60, 0)])
    assert [g.disparity_ratio for g in hopeless.groups] == [1.0, 1.0] and not hopeless.flagged
    assert all(math.isfinite(g.accuracy) for g in hopeless.groups)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_samples": 0}, {"alpha": 0.0}, {"alpha": 1.0}, {"disparity_threshold": 0.0}],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        analyse("gender", [GroupCount("a", 50, 40)], **kwargs)  # type: ignore[arg-type]


def test_bad_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        analyse("gender", [GroupCount("a", 50, 40), GroupCount("a", 50, 40)])
    with pytest.raises(ValueError, match="correct <= n"):
        GroupCount("a", 10, 11)

"""Banded DTW against a plain O(n·m) pure-Python reference."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from megacity.scoring.dtw import MAX_CELLS, dtw, sakoe_chiba_window


def reference_dtw(
    x: np.ndarray,
    y: np.ndarray,
    radius: int | None = None,
    xw: np.ndarray | None = None,
    yw: np.ndarray | None = None,
    root: bool = False,
) -> tuple[float, list[tuple[int, int]]]:
    """Textbook DTW over the full matrix; cells outside the band are simply infinite."""
    n, m = len(x), len(y)

    def inside(i: int, j: int) -> bool:
        return radius is None or n == 1 or abs(j * (n - 1) - i * (m - 1)) <= radius * (n - 1)

    def cost(i: int, j: int) -> float:
        if xw is None or yw is None:
            c = float(sum((a - b) ** 2 for a, b in zip(x[i], y[j], strict=True)))
        else:
            w = [p * q for p, q in zip(xw[i], yw[j], strict=True)]
            d2 = [(a - b) ** 2 for a, b in zip(x[i], y[j], strict=True)]
            c = len(w) * sum(p * q for p, q in zip(w, d2, strict=True)) / sum(w)
        return math.sqrt(c) if root else c

    acc = [[math.inf] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            if not inside(i, j):
                continue
            if i == 0 and j == 0:
                acc[i][j] = cost(0, 0)
                continue
            prev = min(
                acc[i - 1][j - 1] if i and j else math.inf,
                acc[i - 1][j] if i else math.inf,
                acc[i][j - 1] if j else math.inf,
            )
            acc[i][j] = cost(i, j) + prev
    path, i, j = [(n - 1, m - 1)], n - 1, m - 1
    while (i, j) != (0, 0):
        steps = [(i - 1, j - 1), (i - 1, j), (i, j - 1)]  # same tie order as the kernel
        i, j = min((s for s in steps if s[0] >= 0 and s[1] >= 0), key=lambda s: acc[s[0]][s[1]])
        path.append((i, j))
    return acc[n - 1][m - 1], path[::-1]


def effective_radius(n: int, m: int, radius: int) -> int:
    return max(radius, 1, math.ceil((m - 1) / (2 * (n - 1))))


@pytest.mark.parametrize(("n", "m"), [(1, 1), (1, 7), (7, 1), (30, 30), (24, 40), (40, 24)])
def test_full_band_equals_reference(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 100 + m)
    x, y = rng.normal(size=(n, 5)), rng.normal(size=(m, 5))
    got = dtw(x, y)
    want, path = reference_dtw(x, y)
    assert abs(got.distance - want) <= 1e-9
    assert [tuple(p) for p in got.path.tolist()] == path


@pytest.mark.parametrize(("n", "m", "radius"), [(40, 40, 3), (40, 32, 4), (32, 40, 2), (50, 62, 0)])
def test_banded_equals_banded_reference(n: int, m: int, radius: int) -> None:
    rng = np.random.default_rng(radius)
    x, y = rng.normal(size=(n, 4)), rng.normal(size=(m, 4))
    got = dtw(x, y, radius=radius)
    want, path = reference_dtw(x, y, effective_radius(n, m, radius))
    assert abs(got.distance - want) <= 1e-9
    assert [tuple(p) for p in got.path.tolist()] == path
    assert got.distance >= dtw(x, y).distance - 1e-12  # a band can only cost more


def test_weighted_and_euclidean_costs_equal_reference() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(20, 6)), rng.normal(size=(26, 6))
    xw, yw = rng.random((20, 6)), rng.random((26, 6))
    got = dtw(x, y, radius=5, x_weights=xw, y_weights=yw, metric="euclidean")
    want, path = reference_dtw(x, y, effective_radius(20, 26, 5), xw, yw, root=True)
    assert abs(got.distance - want) <= 1e-9
    assert [tuple(p) for p in got.path.tolist()] == path
    ones = dtw(x, y, x_weights=np.ones_like(x), y_weights=np.ones_like(y))
    assert ones.distance == pytest.approx(dtw(x, y).distance, rel=1e-12)


def test_zero_weight_pairs_cost_empty_cost() -> None:
    x, y = np.zeros((3, 2)), np.ones((3, 2))
    res = dtw(x, y, x_weights=np.zeros((3, 2)), y_weights=np.ones((3, 2)), empty_cost=2.5)
    assert res.distance == pytest.approx(7.5)  # the diagonal: three cells


@pytest.mark.parametrize("ratio", [0.8, 1.25])
def test_narrow_band_admits_tempo_ratios(ratio: float) -> None:
    # A sequence and its time-stretched copy align at almost no cost with a 2-frame band.
    t = np.arange(200) / 30
    x = np.stack([np.sin(2 * t), np.cos(3 * t)], axis=1)
    ts = np.arange(int(200 * ratio)) / 30 / ratio
    y = np.stack([np.sin(2 * ts), np.cos(3 * ts)], axis=1)
    res = dtw(x, y, radius=2)
    assert res.distance / len(res.path) < 1e-2
    assert tuple(res.path[0]) == (0, 0) and tuple(res.path[-1]) == (199, len(y) - 1)


def test_path_is_monotone_and_connected() -> None:
    rng = np.random.default_rng(3)
    path = dtw(rng.normal(size=(60, 3)), rng.normal(size=(75, 3)), radius=6).path
    steps = np.diff(path, axis=0)
    assert set(map(tuple, steps.tolist())) <= {(1, 1), (1, 0), (0, 1)}


def test_window_rows_connect_and_cover_the_corners() -> None:
    for n, m, r in [(10, 40, 1), (40, 10, 1), (100, 125, 5), (2, 2, 0)]:
        lo, hi = sakoe_chiba_window(n, m, r)
        assert lo[0] == 0 and hi[-1] == m - 1
        assert (lo <= hi).all() and (np.diff(lo) >= 0).all() and (np.diff(hi) >= 0).all()
        assert (lo[1:] <= hi[:-1] + 1).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": np.full((3, 2), np.nan)}, "NaN"),
        ({"y": np.zeros((3, 3))}, "same dimension"),
        ({"x": np.zeros((0, 2))}, "non-empty"),
        ({"x_weights": -np.ones((3, 2))}, ">= 0"),
        ({"x_weights": np.ones((2, 2))}, "same shapes"),
        ({"metric": "cosine"}, "metric"),
        ({"radius": -1}, "radius"),
    ],
)
def test_bad_input_raises(kwargs: dict[str, Any], message: str) -> None:
    args = {"x": np.zeros((3, 2)), "y": np.zeros((3, 2)), **kwargs}
    with pytest.raises(ValueError, match=message):
        dtw(**args)


def test_too_large_a_problem_is_refused_before_allocating() -> None:
    side = math.isqrt(MAX_CELLS) + 10
    with pytest.raises(ValueError, match="too large"):
        dtw(np.zeros((side, 1)), np.zeros((side, 1)))

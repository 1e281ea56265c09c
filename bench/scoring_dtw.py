"""DTW speed and exactness: megacity's banded DTW vs fastdtw vs plain O(n·m) references.

Run: ``.venv/bin/python bench/scoring_dtw.py`` (needs ``pip install fastdtw``; ~20 s).
Features are dance-like: 25 joint angles, each a sum of sines of several tempos, written as
(cos, sin) pairs like ``megacity.scoring.motion`` (d = 50); the attempt is the same dance
with a smoothly drifting tempo and a little noise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from megacity.scoring.dtw import dtw
from megacity.scoring.motion import FEATURE_DIM

try:
    from fastdtw import fastdtw
except ImportError:  # the bench still runs, without the comparison
    fastdtw = None

REPEATS = 15


def dance_features(frames: int, seed: int, warp: float = 0.0) -> np.ndarray:
    """``(frames, FEATURE_DIM)`` unit-vector features of a synthetic dance at 30 fps."""
    rng = np.random.default_rng(0)  # the same dance for every seed
    count = FEATURE_DIM // 2
    freqs, phases = rng.uniform(0.25, 1.5, (count, 3)), rng.uniform(0, 2 * np.pi, (count, 3))
    amps = rng.uniform(0.2, 0.8, (count, 3))
    t = np.arange(frames) / 30.0
    t = t + warp * np.sin(2 * np.pi * t / t[-1])  # tempo drifts ahead, then behind
    angles = (amps[..., None] * np.sin(2 * np.pi * freqs[..., None] * t + phases[..., None])).sum(1)
    angles += np.random.default_rng(seed).normal(0, 0.05, angles.shape)
    return np.stack([np.cos(angles.T), np.sin(angles.T)], axis=2).reshape(frames, FEATURE_DIM)


def cost_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.sqrt(np.maximum(sq, 0.0))


def python_dtw(x: np.ndarray, y: np.ndarray) -> float:
    """Textbook O(n·m) DTW: a Python loop over a numpy-computed Euclidean cost matrix."""
    cost = cost_matrix(x, y).tolist()
    n, m = len(cost), len(cost[0])
    prev = [math.inf] * (m + 1)
    prev[0] = 0.0
    for i in range(n):
        row = [math.inf] * (m + 1)
        ci = cost[i]
        for j in range(m):
            row[j + 1] = ci[j] + min(prev[j], prev[j + 1], row[j])
        prev = row
        prev[0] = math.inf
    return prev[m]


def numpy_dtw(x: np.ndarray, y: np.ndarray) -> float:
    """Exact O(n·m) DTW vectorised along anti-diagonals (numpy only)."""
    cost = cost_matrix(x, y)
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for s in range(2, n + m + 1):
        i = np.arange(max(1, s - m), min(n, s - 1) + 1)
        j = s - i
        best = np.minimum(np.minimum(acc[i - 1, j - 1], acc[i - 1, j]), acc[i, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    return float(acc[n, m])


def timed(fn: Callable[[], float], repeats: int = REPEATS) -> tuple[float, float]:
    """Best wall time (ms) over ``repeats`` runs, and the distance."""
    best, value = math.inf, math.nan
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0, value


def same(dist: float, exact: float) -> str:
    if abs(dist - exact) <= 1e-9 * max(1.0, exact):
        return "yes"
    return f"no ({(dist - exact) / exact:+.1%})"


def speed_rows(n: int) -> list[tuple[str, float, float]]:
    """(method, best time ms, distance) for one n×n problem; the exact reference comes last."""
    x, y = dance_features(n, seed=1), dance_features(n, seed=2, warp=0.4)
    band = n // 10  # what score_dance uses for a 10 s / 60 s clip at 30 fps
    rows = [
        (f"megacity dtw, band ±{band} (10 %)",
         *timed(lambda: dtw(x, y, radius=band, metric="euclidean").distance)),
        ("megacity dtw, no band", *timed(lambda: dtw(x, y, metric="euclidean").distance)),
    ]  # fmt: skip
    if fastdtw is not None:
        rows.append(("fastdtw radius=1 (approximate)",
                     *timed(lambda: fastdtw(x, y, radius=1, dist=2)[0], 3)))  # fmt: skip
    rows.append(("numpy anti-diagonal O(n·m)", *timed(lambda: numpy_dtw(x, y), 1)))
    if n <= 300:
        rows.append(("pure-Python O(n·m) reference", *timed(lambda: python_dtw(x, y), 1)))
    return rows


def speed_table() -> None:
    header = (
        f"{'frames':<11} {'method':<34} {'time ms':>9} {'vs fastdtw':>10} {'distance':>12}  exact?"
    )
    print(header)
    print("-" * len(header))
    for n in (300, 1800):
        rows = speed_rows(n)
        exact = rows[-1][2]
        fast_ms = next((ms for name, ms, _ in rows if name.startswith("fastdtw")), math.nan)
        for name, ms, dist in rows:
            ratio = f"{fast_ms / ms:9.1f}x" if math.isfinite(fast_ms) else "      n/a"
            print(
                f"{f'{n}x{n}':<11} {name:<34} {ms:9.2f} {ratio:>10} {dist:12.4f}  {same(dist, exact)}"
            )
        print()


def accuracy_table() -> None:
    print("distance vs the exact O(n·m) optimum, 300 frames, tempo drifting by ± drift:")
    print(f"{'drift s':>7} {'exact':>10}  {'band ±30':<16} {'no band':<10} {'fastdtw r=1':<14}")
    for drift in (0.4, 1.0, 2.0):
        x, y = dance_features(300, seed=1), dance_features(300, seed=2, warp=drift)
        exact = numpy_dtw(x, y)
        banded = dtw(x, y, radius=30, metric="euclidean").distance
        full = dtw(x, y, metric="euclidean").distance
        fast = fastdtw(x, y, radius=1, dist=2)[0] if fastdtw is not None else math.nan
        print(f"{drift:7.1f} {exact:10.3f}  {same(banded, exact):<16} {same(full, exact):<10} "
              f"{same(fast, exact):<14}")  # fmt: skip


def main() -> None:
    start = time.perf_counter()
    dtw(np.zeros((3, 2)), np.zeros((4, 2)))
    print(
        f"first call (numba compile, or cache load): {(time.perf_counter() - start) * 1000:.0f} ms"
    )
    print(f"features: d = {FEATURE_DIM}, best of {REPEATS} runs (1 for the O(n·m) references)\n")
    speed_table()
    accuracy_table()
    print("\n(a band costs more than the unbanded optimum only when the best path leaves it:")
    print(" a 2 s drift does not fit a ±1 s band; score_dance's band is at least ±2 s)")
    print(f"total bench time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()

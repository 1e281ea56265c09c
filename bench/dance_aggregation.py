"""Dance aggregation benchmark: the cost of turning aligned frames into scores, today's
per-moment aggregation (moment scores, bins and ratings, the same-choreography verdict,
timing) against the aggregation it replaced (clip-level pooling before the score map,
a Python loop over the bins), on the same alignment in the same run.

The baseline is the previous code, kept here verbatim in spirit: pooled error per part over
the clip → φ → score; per bin the same pooling; timing from the path. Target: within 10 %
of the baseline. The DTW alignment before it is the same for both and is shown apart.

Usage: python bench/dance_aggregation.py [--runs N]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import median_ms, table  # noqa: E402

from megacity.scoring import dance  # noqa: E402
from megacity.scoring.dance_moments import MIN_VISIBLE, PART_SIZE  # noqa: E402
from megacity.scoring.dance_types import (  # noqa: E402
    DanceConfig,
    FrameErrors,
    error_to_degrees,
    score_from_error,
)
from megacity.scoring.pose import BODY_PARTS  # noqa: E402
from tests.scoring.choreography import choreography, perform, seq  # noqa: E402


def _old_pooled(fe: FrameErrors, rows: np.ndarray) -> np.ndarray:
    num, den = fe.num[rows].sum(axis=0), fe.den[rows].sum(axis=0)
    seen = den / max(len(rows), 1) / PART_SIZE
    out = np.full(len(BODY_PARTS), np.nan)
    for p in np.flatnonzero(seen >= MIN_VISIBLE):
        out[p] = error_to_degrees(num[p] / den[p])
    return out


def _old_overall(part_deg: np.ndarray, weights: np.ndarray) -> float:
    seen = np.isfinite(part_deg)
    if not seen.any():
        return math.nan
    one_minus_cos = 1.0 - np.cos(np.radians(part_deg[seen]))
    return error_to_degrees(float((weights[seen] * one_minus_cos).sum() / weights[seen].sum()))


def _old_timing(al: object, fe: FrameErrors) -> tuple[float, float]:
    path, a, r = al.path, al.attempt, al.reference  # type: ignore[attr-defined]
    i, j = path[:, 0], path[:, 1]
    keep = fe.scored[i] & r.present[j]
    ta, tr = a.times[i[keep]], r.times[j[keep]]
    lo, hi = int(0.1 * (len(ta) - 1)), int(0.9 * (len(ta) - 1))
    span = float(tr[hi] - tr[lo])
    return float(np.median(ta - tr)) * 1000.0, float(ta[hi] - ta[lo]) / span if span > 0 else 1.0


def old_aggregate(al: object, fe: FrameErrors, cfg: DanceConfig) -> float:
    """The aggregation before per-moment scores (the baseline)."""
    weights = al.part_weights  # type: ignore[attr-defined]
    times = al.attempt.times  # type: ignore[attr-defined]
    part_deg = _old_pooled(fe, np.flatnonzero(fe.scored))
    overall = _old_overall(part_deg, weights)
    bin_s = 60.0 / cfg.bpm if cfg.bpm else cfg.bin_s
    bins = np.floor((times - times[0]) / bin_s).astype(np.int64)
    errors = np.full((len(BODY_PARTS), int(bins[-1]) + 1), np.nan)
    for b in np.unique(bins[fe.scored]):
        errors[:, b] = _old_pooled(fe, np.flatnonzero((bins == b) & fe.scored))
    timeline = [score_from_error(d) if math.isfinite(d := _old_overall(errors[:, b], weights)) else None
                for b in range(errors.shape[1])]  # fmt: skip
    _old_timing(al, fe)
    del timeline
    return score_from_error(overall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=31)
    args = parser.parse_args()
    rows = []
    for seconds in (8.0, 60.0, 180.0):
        steps = choreography(11, bpm=110, beats=int(seconds * 110 / 60) + 2)
        reference = seq(perform(steps, seconds))
        attempt = seq(perform(steps, seconds, wrong={"left_arm": (3.0, 5.0)}, tempo=(0.95, 1.05)))
        cfg = DanceConfig(bpm=110)
        al = dance._align(attempt, reference, cfg)
        fe = dance._frame_errors(al)
        old_aggregate(al, fe, cfg), dance._aggregate(al, fe, cfg)  # warm-up
        align = median_ms(
            lambda a=attempt, r=reference, c=cfg: dance._align(a, r, c), max(3, args.runs // 5)
        )
        old = median_ms(lambda a=al, f=fe, c=cfg: old_aggregate(a, f, c), args.runs)
        new = median_ms(lambda a=al, f=fe, c=cfg: dance._aggregate(a, f, c), args.runs)
        rows.append([f"{seconds:g} s at 30 fps", f"{align:.1f} ms", f"{old:.2f} ms", f"{new:.2f} ms",
                     f"{(new / old - 1) * 100:+.0f} %"])  # fmt: skip
    table(
        f"Dance aggregation after the alignment, median of {args.runs} (target: within +10 %)",
        ["clip", "features + DTW", "before (clip pooling)", "now (per moment)", "change"],
        rows,
    )


if __name__ == "__main__":
    main()

"""The dance score in words: its worst moments and short coaching lines (English and Korean).

A worst moment is a run of heatmap bins where one body part's error is at least
``moment_min_error_deg``; longer and worse runs come first. How the part was off (too
low, bent, ...) is read from the poses of the learner's frames and the reference frames
the DTW matched to them (``motion.part_deviation``).
"""

from __future__ import annotations

import numpy as np

from megacity.scoring.dance_types import (
    DanceConfig,
    Feedback,
    FrameErrors,
    PartTimeErrors,
    Timing,
    WorstMoment,
    score_from_error,
)
from megacity.scoring.motion import ISSUE_PHRASES, Motion, part_deviation
from megacity.scoring.pose import BODY_PARTS, PART_NAMES


def clock(t: float) -> str:
    """A time in seconds as the learner reads it in feedback: m:ss."""
    s = max(0, int(t))
    return f"{s // 60}:{s % 60:02d}"


def _runs(row: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Consecutive bins ``[start, end)`` whose error is at least ``threshold``."""
    bad = np.concatenate([[False], np.nan_to_num(row, nan=0.0) >= threshold, [False]])
    edges = np.flatnonzero(np.diff(bad.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def worst_moments(
    attempt: Motion, reference: Motion, fe: FrameErrors, heat: PartTimeErrors, cfg: DanceConfig
) -> tuple[WorstMoment, ...]:
    """The longest and worst runs of heatmap bins where one part was off (at most ``cfg.max_moments``)."""
    found: list[tuple[float, WorstMoment]] = []
    times = attempt.times
    for p, part in enumerate(BODY_PARTS):
        for b0, b1 in _runs(heat.errors_deg[p], cfg.moment_min_error_deg):
            start, end = float(heat.starts_s[b0]), float(heat.starts_s[b1 - 1]) + heat.bin_s
            rows = np.flatnonzero((times >= start) & (times < end) & fe.scored)
            worst = float(np.nanmax(heat.errors_deg[p, b0:b1]))
            ref_points = reference.points[fe.ref_frame[rows]]
            issue, _ = part_deviation(attempt.points[rows], ref_points, part)
            noun, _, subj = PART_NAMES[part]
            what_en, what_ko, _, _ = ISSUE_PHRASES[issue]
            end = min(end, float(times[-1]))
            with np.errstate(invalid="ignore", divide="ignore"):
                frame_err = fe.num[rows, p] / fe.den[rows, p]
            peak = (
                int(rows[np.nanargmax(frame_err)]) if np.isfinite(frame_err).any() else int(rows[0])
            )
            moment = WorstMoment(start, end, part, issue, score_from_error(worst),
                                 what_en.format(n=noun), what_ko.format(s=subj), float(times[peak]),
                                 float(reference.times[fe.ref_frame[peak]]))  # fmt: skip
            found.append((worst * (b1 - b0) ** 0.5, moment))
    found.sort(key=lambda x: -x[0])  # long and bad first
    return tuple(m for _, m in found[: cfg.max_moments])


_SUMMARY = (
    (90.0, "Great job! Your moves match the reference closely.",
     "훌륭해요! 레퍼런스 동작과 거의 같아요."),
    (70.0, "Good work - a few moments still need polish.", "좋아요! 몇 군데만 더 다듬어 보세요."),
    (0.0, "Keep practising - focus on the moments below.", "계속 연습해 봐요. 아래 구간에 집중해 보세요."),
)  # fmt: skip


def feedback(
    score: float, moments: tuple[WorstMoment, ...], timing: Timing, cfg: DanceConfig
) -> tuple[Feedback, ...]:
    """A summary line, advice on the worst moments (at most ``cfg.max_feedback``), and timing."""
    lines = [next(Feedback(en, ko) for floor, en, ko in _SUMMARY if score >= floor)]
    said: set[tuple[str, str]] = set()
    for m in moments:
        if len(said) >= cfg.max_feedback or (m.part, m.issue) in said:
            continue
        said.add((m.part, m.issue))
        noun, obj, _ = PART_NAMES[m.part]
        _, _, advice_en, advice_ko = ISSUE_PHRASES[m.issue]
        at = clock(m.start_s)
        lines.append(Feedback(f"{advice_en.format(n=noun)} at {at}.",
                              f"{at}에 {advice_ko.format(o=obj)}.", m.part, m.start_s))  # fmt: skip
    lag = timing.offset_ms / 1000.0
    if lag * 1000.0 > cfg.timing_tolerance_ms:
        lines.append(Feedback(f"You are {lag:.1f} s behind the reference - move a little earlier.",
                              f"레퍼런스보다 {lag:.1f}초 늦어요. 조금 더 빨리 움직이세요."))  # fmt: skip
    elif -lag * 1000.0 > cfg.timing_tolerance_ms:
        lines.append(Feedback(f"You are {-lag:.1f} s ahead of the reference - wait for the beat.",
                              f"레퍼런스보다 {-lag:.1f}초 빨라요. 박자를 기다렸다가 움직이세요."))  # fmt: skip
    return tuple(lines)

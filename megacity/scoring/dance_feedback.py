"""The dance score in words: its worst moments and short coaching lines (English and Korean).

A worst moment is a run of heatmap bins where one body part's score is at most
``moment_max_score``; longer and worse runs come first. How the part was off (too
low, bent, ...) is read from the poses of the learner's frames and the reference frames
the DTW matched to them (``motion.part_deviation``).
"""

from __future__ import annotations

import numpy as np

from megacity.scoring.dance_types import (
    DanceConfig,
    Feedback,
    FrameErrors,
    Match,
    PartTimeErrors,
    TimelinePoint,
    Timing,
    WorstMoment,
)
from megacity.scoring.motion import ISSUE_PHRASES, Motion, part_deviation
from megacity.scoring.pose import BODY_PARTS, PART_NAMES


def clock(t: float) -> str:
    """A time in seconds as the learner reads it in feedback: m:ss."""
    s = max(0, int(t))
    return f"{s // 60}:{s % 60:02d}"


def _runs(row: np.ndarray, max_score: float) -> list[tuple[int, int]]:
    """Consecutive bins ``[start, end)`` whose score is at most ``max_score``."""
    bad = np.concatenate([[False], np.nan_to_num(row, nan=101.0) <= max_score, [False]])
    edges = np.flatnonzero(np.diff(bad.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def worst_moments(
    attempt: Motion, reference: Motion, fe: FrameErrors, heat: PartTimeErrors, cfg: DanceConfig
) -> tuple[WorstMoment, ...]:
    """The longest and worst runs of heatmap bins where one part was off (at most ``cfg.max_moments``)."""
    if heat.scores is None:
        raise ValueError("worst moments need the heatmap's part scores")
    found: list[tuple[float, WorstMoment]] = []
    times = attempt.times
    for p, part in enumerate(BODY_PARTS):
        for b0, b1 in _runs(heat.scores[p], cfg.moment_max_score):
            start, end = float(heat.starts_s[b0]), float(heat.starts_s[b1 - 1]) + heat.bin_s
            rows = np.flatnonzero((times >= start) & (times < end) & fe.scored)
            worst = float(np.nanmin(heat.scores[p, b0:b1]))
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
            moment = WorstMoment(start, end, part, issue, worst,
                                 what_en.format(n=noun), what_ko.format(s=subj), float(times[peak]),
                                 float(reference.times[fe.ref_frame[peak]]))  # fmt: skip
            found.append(((100.0 - worst) * (b1 - b0) ** 0.5, moment))
    found.sort(key=lambda x: -x[0])  # long and bad first
    return tuple(m for _, m in found[: cfg.max_moments])


_SUMMARY = (
    (90.0, "Great job! Your moves match the reference closely.",
     "훌륭해요! 레퍼런스 동작과 거의 같아요."),
    (70.0, "Good work - a few moments still need polish.", "좋아요! 몇 군데만 더 다듬어 보세요."),
    (0.0, "Keep practising - focus on the moments below.", "계속 연습해 봐요. 아래 구간에 집중해 보세요."),
)  # fmt: skip


MAX_MISSES_NAMED = 3


def _another_dance(cfg: DanceConfig) -> Feedback:
    en_name = f'"{cfg.title}"' if cfg.title else "the reference dance"
    ko_name = f"'{cfg.title}' 안무" if cfg.title else "레퍼런스 안무"
    span = f" ({clock(0)}-{clock(8 * 60.0 / cfg.bpm)})" if cfg.bpm else ""
    return Feedback(
        f"This doesn't look like {en_name} yet - start with the first 8 counts{span} and copy"
        " them count by count.",
        f"아직 {ko_name}와 달라 보여요. 처음 8카운트{span}부터 한 동작씩 따라 해 보세요.",
    )


def _moves_line(timeline: tuple[TimelinePoint, ...]) -> Feedback | None:
    rated = [p for p in timeline if p.rating is not None]
    if not rated:
        return None
    perfect = sum(1 for p in rated if p.rating == "perfect")
    missed = [p for p in rated if p.rating == "miss"]
    en = f"{perfect} of {len(rated)} moves perfect."
    ko = f"{len(rated)}개 동작 중 {perfect}개가 퍼펙트예요."
    if missed:
        at = ", ".join(clock(p.start_s) for p in missed[:MAX_MISSES_NAMED])
        more = " …" if len(missed) > MAX_MISSES_NAMED else ""
        en += f" Practise the {len(missed)} missed moves: {at}{more}."
        ko += f" 놓친 동작 {len(missed)}개를 연습해 보세요: {at}{more}."
        return Feedback(en, ko, None, missed[0].start_s)
    return Feedback(en, ko)


def feedback(
    score: float,
    moments: tuple[WorstMoment, ...],
    timing: Timing,
    cfg: DanceConfig,
    match: Match,
    timeline: tuple[TimelinePoint, ...] = (),
) -> tuple[Feedback, ...]:
    """Coaching lines: "another dance" alone when it is one; else a summary, the moves'
    ratings, advice on the worst moments (at most ``cfg.max_feedback``) and timing."""
    if not match.same_choreography:
        return (_another_dance(cfg),)  # part and timing advice would be for the wrong dance
    lines = [next(Feedback(en, ko) for floor, en, ko in _SUMMARY if score >= floor)]
    moves = _moves_line(timeline)
    if moves is not None:
        lines.append(moves)
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
    if timing.offset_ms is None:
        return tuple(lines)
    lag = timing.offset_ms / 1000.0
    if lag * 1000.0 > cfg.timing_tolerance_ms:
        lines.append(Feedback(f"You are {lag:.1f} s behind the reference - move a little earlier.",
                              f"레퍼런스보다 {lag:.1f}초 늦어요. 조금 더 빨리 움직이세요."))  # fmt: skip
    elif -lag * 1000.0 > cfg.timing_tolerance_ms:
        lines.append(Feedback(f"You are {-lag:.1f} s ahead of the reference - wait for the beat.",
                              f"레퍼런스보다 {-lag:.1f}초 빨라요. 박자를 기다렸다가 움직이세요."))  # fmt: skip
    return tuple(lines)

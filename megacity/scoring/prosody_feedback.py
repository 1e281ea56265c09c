"""Prosody in words: short coaching lines in English and Korean for intonation (shadowing)
and pitch and rhythm (sing-along). Each line names where: a time, a phrase, a word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the types only: the modules that call these import this one
    from .pitch import PhraseScore, PitchAccuracy, Rhythm
    from .prosody import Difference, Direction

MAX_NAMED = 2


@dataclass(frozen=True)
class Line:
    """One coaching sentence in English and Korean; ``time_s`` in the reference, if any."""

    en: str
    ko: str
    time_s: float | None = None
    phrase: int | None = None


def clock(t: float) -> str:
    """Seconds as m:ss."""
    s = max(0, int(t))
    return f"{s // 60}:{s % 60:02d}"


_MOVES = {"rise": ("rises", "올라가요"), "fall": ("falls", "내려가요"), "level": ("stays flat", "평평해요")}  # fmt: skip
_ACTOR = {"rise": ("rises", "올리는데"), "fall": ("falls", "내리는데"), "level": ("stays flat", "평평하게 끝나는데")}  # fmt: skip


def _end_line(mine: Direction | None, theirs: Direction | None) -> Line | None:
    if mine is None or theirs is None or mine == theirs:
        return None
    return Line(
        f"Your voice {_MOVES[mine][0]} at the end of the line where the actor's {_ACTOR[theirs][0]}.",
        f"문장 끝에서 배우는 목소리를 {_ACTOR[theirs][1]}, 당신은 {_MOVES[mine][1]}.",
    )


def _where(diff: Difference) -> tuple[str, str]:
    if diff.words:
        said = " ".join(diff.words)
        return f'around "{said}"', f"'{said}' 부분에서"
    return f"at {clock(diff.start_s)}", f"{clock(diff.start_s)}에"


def _quoted(word: str | None) -> tuple[str, str]:
    return (f' after "{word}"', f"'{word}' 다음에 ") if word else ("", "")


def intonation_feedback(
    mine: Direction | None,
    theirs: Direction | None,
    diff: Difference | None,
    rate_ratio: float,
    rate_score: float,
    missing_after: Sequence[str | None],
    extra_after: Sequence[str | None],
) -> tuple[Line, ...]:
    """Lines on the end of the line, the biggest pitch difference, pauses and pace."""
    lines = [line for line in (_end_line(mine, theirs),) if line is not None]
    if diff is not None:
        en_at, ko_at = _where(diff)
        n = abs(diff.semitones)
        way_en, way_ko = ("higher", "높아요") if diff.semitones > 0 else ("lower", "낮아요")
        lines.append(Line(f"{en_at[0].upper()}{en_at[1:]} your pitch is {n:.0f} semitones {way_en} than the actor's.",
                          f"{ko_at} 배우보다 음이 {n:.0f}반음 {way_ko}.", diff.start_s))  # fmt: skip
    for word in list(missing_after)[:MAX_NAMED]:
        en, ko = _quoted(word)
        lines.append(Line(f"Pause{en} as the actor does.", f"배우처럼 {ko}잠깐 쉬어 보세요."))
    for word in list(extra_after)[:MAX_NAMED]:
        en, ko = _quoted(word)
        lines.append(Line(f"Keep going{en}: the actor does not stop there.",
                          f"{ko}멈추지 말고 이어서 말해 보세요. 배우는 거기서 쉬지 않아요."))  # fmt: skip
    if rate_score < 100:
        pct = abs(rate_ratio - 1) * 100
        if rate_ratio < 1:
            lines.append(Line(f"You speak {pct:.0f} % slower than the actor - try a little faster.",
                              f"배우보다 {pct:.0f}% 느리게 말해요. 조금 더 빠르게 해 보세요."))  # fmt: skip
        else:
            lines.append(Line(f"You speak {pct:.0f} % faster than the actor - slow down a little.",
                              f"배우보다 {pct:.0f}% 빠르게 말해요. 조금 천천히 해 보세요."))  # fmt: skip
    if not lines:
        lines.append(
            Line("Your intonation follows the actor's closely.", "배우의 억양을 잘 따라 했어요.")
        )
    return tuple(lines)


OFF_KEY_CENTS = 30.0  # a median error beyond this is "flat" or "sharp"
RHYTHM_OK = 70.0


def _phrase_name(p: PhraseScore) -> tuple[str, str]:
    span = f"{clock(p.start_s)}-{clock(p.end_s)}"
    lyric = f', "{p.text}"' if p.text else ""
    return f"Phrase {p.index + 1} ({span}{lyric})", f"{p.index + 1}번째 소절({span}{lyric})"


def _phrase_line(p: PhraseScore) -> Line:
    en, ko = _phrase_name(p)
    off = p.offset_cents
    if off is not None and abs(off) >= OFF_KEY_CENTS:
        way_en, way_ko = ("flat", "낮았어요") if off < 0 else ("sharp", "높았어요")
        return Line(f"{en} was {abs(off):.0f} cents {way_en}: practise it slowly with the reference.",
                    f"{ko}이 {abs(off):.0f}센트 {way_ko}. 레퍼런스를 들으며 천천히 연습해 보세요.",
                    p.start_s, p.index)  # fmt: skip
    if p.pitch < PHRASE_PITCH_OK:
        return Line(f"{en} wandered off the melody: sing it note by note with the reference.",
                    f"{ko}에서 음이 흔들렸어요. 레퍼런스와 한 음씩 맞춰 불러 보세요.", p.start_s, p.index)  # fmt: skip
    return Line(f"{en}: the notes come in off the beat - listen for where each one starts.",
                f"{ko}에서 박자가 어긋났어요. 음이 시작하는 타이밍을 들어 보세요.", p.start_s, p.index)  # fmt: skip


PHRASE_PITCH_OK = 85.0


def singing_feedback(
    pitch: PitchAccuracy,
    rhythm: Rhythm,
    phrases: tuple[PhraseScore, ...],
    worst: tuple[int, ...],
) -> tuple[Line, ...]:
    """Lines on the key (flat, sharp, an octave up), the worst phrases and the rhythm."""
    lines = []
    if pitch.octave_shifted >= 0.5:
        lines.append(Line("You sang an octave away from the reference - fine for your voice.",
                          "레퍼런스와 한 옥타브 다르게 불렀어요. 목소리에 맞는 높이라 괜찮아요."))  # fmt: skip
    off = pitch.offset_cents
    if off is not None and abs(off) >= OFF_KEY_CENTS:
        way_en, way_ko = ("flat", "낮게") if off < 0 else ("sharp", "높게")
        lines.append(Line(f"You sing {abs(off):.0f} cents {way_en} on average - match the first note before you start.",
                          f"평균 {abs(off):.0f}센트 {way_ko} 불렀어요. 시작하기 전에 첫 음을 맞춰 보세요."))  # fmt: skip
    by_index = {p.index: p for p in phrases}
    lines += [_phrase_line(by_index[k]) for k in worst]
    if rhythm.score is not None and rhythm.score < RHYTHM_OK:
        lines.append(Line("Your notes start off the beat - clap the rhythm along with the reference first.",
                          "음이 박자에서 벗어나요. 먼저 레퍼런스에 맞춰 박수로 리듬을 익혀 보세요."))  # fmt: skip
    if not lines:
        lines.append(
            Line("In tune and on the beat - great singing!", "음정도 박자도 정확해요. 훌륭해요!")
        )
    return tuple(lines)

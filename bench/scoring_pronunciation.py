"""Benchmark: time to score one 30-word attempt with megacity.scoring.pronunciation.assess.

Run: .venv/bin/python bench/scoring_pronunciation.py  (target: p99 < 2 ms per attempt)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from megacity.scoring.pronunciation import Assessment, RecognizedWord, assess

RUNS = 2000
WARMUP = 50
TARGET_MS = 2.0

EN_REFERENCE = (
    "Please schedule the meeting for next Tuesday at three o'clock, and remember that "
    "speech recognition works offline on this small computer while the quick brown fox "
    "jumps over the lazy dog."
)
# Four errors: a substitution, an omission, an insertion and a digit for a spelled number.
EN_ATTEMPT = (
    "please schedule the meeting for next thursday at 3 o'clock and remember that "
    "speech recognition works offline on this um small computer while the quick brown fox "
    "jumps over the dog"
)
KO_REFERENCE = (
    "안녕하세요. 오늘 날씨가 정말 좋네요. 저는 매일 아침 커피를 마십니다. 주말에는 친구와 "
    "함께 공원에서 산책을 하고 저녁에는 한국 드라마를 보면서 한국어 발음을 연습합니다. "
    "노래를 따라 부르는 것도 정말 재미있어요."
)
KO_ATTEMPT = (
    "안녕하세요 오늘 날씨가 정말존네요 저는 매일 아침 커피를 마십니다 주말에는 친구와 "
    "공원에서 산책을 하고 저녁에는 한국 드라마를 보면서 한국어 바름을 연습합니다 "
    "노래를 따라 부르는 것도 정말 재미있어요"
)


def _timed_words(text: str, pause_every: int = 7) -> list[RecognizedWord]:
    """Whisper-like word timings: 0.3 s words, 0.05 s gaps, a 1 s pause every few words."""
    words, clock = [], 0.0
    for index, word in enumerate(text.split()):
        clock += 1.0 if index and index % pause_every == 0 else 0.05
        words.append(RecognizedWord(" " + word, clock, clock + 0.3, 0.9))
        clock += 0.3
    return words


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)]


def _measure(call: Callable[[], Assessment]) -> tuple[float, float, float, float]:
    """(wall p50, wall p99, CPU p50, CPU p99) in ms; CPU time ignores other processes."""
    for _ in range(WARMUP):
        call()
    wall, cpu = [], []
    for _ in range(RUNS):
        wall_start, cpu_start = time.perf_counter(), time.thread_time()
        call()
        cpu.append((time.thread_time() - cpu_start) * 1000.0)
        wall.append((time.perf_counter() - wall_start) * 1000.0)
    return (*_percentiles(wall), *_percentiles(cpu))


def main() -> None:
    """Print a table of p50/p99 milliseconds per assessment, wall clock and CPU."""
    en_words = _timed_words(EN_ATTEMPT)
    ko_words = _timed_words(KO_ATTEMPT)
    cases: list[tuple[str, str, Callable[[], Assessment]]] = [
        ("en, transcript only", EN_REFERENCE, lambda: assess(EN_REFERENCE, EN_ATTEMPT, "en")),
        ("en, word timings", EN_REFERENCE, lambda: assess(EN_REFERENCE, "", "en", words=en_words)),
        ("ko, transcript only", KO_REFERENCE, lambda: assess(KO_REFERENCE, KO_ATTEMPT, "ko")),
        ("ko, word timings", KO_REFERENCE, lambda: assess(KO_REFERENCE, "", "ko", words=ko_words)),
    ]
    print(f"pronunciation.assess, {RUNS} runs per case, target CPU p99 < {TARGET_MS} ms")
    print()
    header = f"{'case':<21}{'words':>6}{'wall p50':>10}{'wall p99':>10}{'cpu p50':>9}{'cpu p99':>9}"
    print(header + "  verdict")
    print("-" * (len(header) + 9))
    for name, reference, call in cases:
        wall50, wall99, cpu50, cpu99 = _measure(call)
        verdict = "ok" if cpu99 < TARGET_MS else "SLOW"
        n_words = len(reference.split())
        print(
            f"{name:<21}{n_words:>6}{wall50:>10.3f}{wall99:>10.3f}{cpu50:>9.3f}{cpu99:>9.3f}"
            f"  {verdict}"
        )
    print("\n(ms; wall p99 includes preemption by other processes on a shared machine)")


if __name__ == "__main__":
    main()

"""PII masking speed: microseconds per call of ``find_pii`` and ``PIIMasker.mask``.

Run: ``.venv/bin/python bench/pii.py`` (~5 s). Sentences are typical chat prompts of about
120-220 characters: clean prose, prose with harmless numbers, and prose with PII; the last
row is the whole labelled evaluation set, per sentence.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import pct, table  # noqa: E402

from megacity.safety.pii import PIIMasker, find_pii  # noqa: E402

SAMPLES = {
    "clean en": "In today's lesson we reviewed the causes of the French Revolution and discussed "
    "how economic pressure, new ideas about rights and a weak monarchy combined; please "
    "write a short reflective paragraph for homework.",
    "clean ko": "오늘 수업에서는 조선 후기 실학의 등장 배경과 주요 학자들의 사상을 살펴보았습니다. "
    "다음 시간까지 교과서를 읽고 느낀 점을 자유롭게 정리해 오세요. 질문이 있으면 언제든지 "
    "물어보세요. 감사합니다 여러분 모두 수고했어요.",
    "numbers en": "The exam starts on 2024-03-15 at 9:00 AM in Room 204; the fee is $1,299.99, "
    "read pages 221 to 240, and solve 3x + 5 = 20 before the quiz on chapter 12 "
    "(ISBN 978-0-13-468599-1).",
    "pii ko": "안녕하세요, 김민준 학생 어머니입니다. 연락은 010-4827-3391로, 메일은 "
    "minji.kim88@gmail.com 으로 부탁드립니다. 주소는 서울 마포구 월드컵북로 396 이고 "
    "수강료는 신한 110-482-917350 으로 보냈어요.",
    "pii en": "Hi, my name is John Smith; call me at +1 (415) 555-0132 or mail "
    "john.smith@example.com. Card 4721 5901 0928 1592 was charged twice from 203.0.113.45.",
}
LABELLED = ROOT / "tests" / "safety" / "data" / "pii_labelled.jsonl"


def per_call_us(fn: Callable[[], object], repeats: int = 7, number: int = 300) -> list[float]:
    """Microseconds per call, one value per repeat of ``number`` calls."""
    fn()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - started) / number * 1e6)
    return out


def main() -> None:
    masker = PIIMasker()
    rows = []
    for name, text in SAMPLES.items():
        find = per_call_us(lambda text=text: find_pii(text))
        mask = per_call_us(lambda text=text: masker.mask(text))
        found = str(len(find_pii(text)))
        speeds = [f"{min(find):.1f}", f"{pct(find, 0.5):.1f}", f"{min(mask):.1f}"]
        rows.append([name, str(len(text)), found, *speeds])
    texts = [json.loads(line)["text"] for line in LABELLED.read_text("utf-8").splitlines()]
    whole = per_call_us(lambda: [find_pii(t) for t in texts], repeats=5, number=3)
    average = min(whole) / len(texts)
    rows.append([f"labelled set ({len(texts)})", "avg", "-", f"{average:.1f}", "-", "-"])
    header = ["sample", "chars", "found", "find min µs", "find p50 µs", "mask min µs"]
    table("PII masking (one core, per call)", header, rows)


if __name__ == "__main__":
    main()

"""PII masking: per-kind tables, masking round trips, streaming restore, labelled-set evaluation."""

from __future__ import annotations

import copy
import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from megacity.safety.pii import (
    Masked,
    PIIKind,
    PIIMasker,
    StreamRestorer,
    find_pii,
    restore,
)

LABELLED = Path(__file__).parent / "data" / "pii_labelled.jsonl"
STRUCTURED = (
    PIIKind.PHONE,
    PIIKind.RRN,
    PIIKind.EMAIL,
    PIIKind.CARD,
    PIIKind.ACCOUNT,
    PIIKind.ADDRESS,
    PIIKind.IP,
)


def found(text: str) -> list[tuple[str, str]]:
    return [(m.kind.value, m.text) for m in find_pii(text)]


POSITIVE = [
    # phones
    ("전화 010-1234-5678 주세요", "PHONE", "010-1234-5678"),
    ("번호 01012345678 이에요", "PHONE", "01012345678"),
    ("010 1234 5678", "PHONE", "010 1234 5678"),
    ("010.1234.5678", "PHONE", "010.1234.5678"),
    ("call +82 10-1234-5678", "PHONE", "+82 10-1234-5678"),
    ("call +82-10-1234-5678", "PHONE", "+82-10-1234-5678"),
    ("call +821012345678 now", "PHONE", "+821012345678"),
    ("서울 02-123-4567", "PHONE", "02-123-4567"),
    ("경기 031-1234-5678", "PHONE", "031-1234-5678"),
    ("인터넷전화 070-1234-5678", "PHONE", "070-1234-5678"),
    ("고객센터 1588-1234", "PHONE", "1588-1234"),
    ("팩스 (02) 312-4567", "PHONE", "(02) 312-4567"),
    ("Call +1 415 555 0132.", "PHONE", "+1 415 555 0132"),
    ("Call (415) 555-0132.", "PHONE", "(415) 555-0132"),
    ("London +44 20 7946 0958", "PHONE", "+44 20 7946 0958"),
    # resident registration numbers: valid checksum, with or without hyphen
    ("번호 880314-1526017", "RRN", "880314-1526017"),
    ("번호 8803141526017", "RRN", "8803141526017"),
    ("외국인 870909-5710498", "RRN", "870909-5710498"),
    # post-2020 (no checksum) only with a context word
    ("주민번호 210304-3563214", "RRN", "210304-3563214"),
    ("210304-3563214 is my resident registration number", "RRN", "210304-3563214"),
    # e-mail
    ("mail a.b+c@ex-ample.co.kr please", "EMAIL", "a.b+c@ex-ample.co.kr"),
    ("메일 kim@naver.com으로", "EMAIL", "kim@naver.com"),
    # cards (Luhn-valid)
    ("card 4721-5901-0928-1592", "CARD", "4721-5901-0928-1592"),
    ("card 4721 5901 0928 1592", "CARD", "4721 5901 0928 1592"),
    ("card 4721590109281592", "CARD", "4721590109281592"),
    ("amex 3788 783848 37269", "CARD", "3788 783848 37269"),
    # accounts: bank context, Korean bank shapes, English context, IBAN
    ("신한 110-123-456789 입금", "ACCOUNT", "110-123-456789"),
    ("우리 1002-123-456789", "ACCOUNT", "1002-123-456789"),
    ("기업은행 123-456789-01-011", "ACCOUNT", "123-456789-01-011"),
    ("카카오뱅크 3333-01-1234567", "ACCOUNT", "3333-01-1234567"),
    ("보내주세요 1002-123-456789", "ACCOUNT", "1002-123-456789"),
    ("account number 12345678", "ACCOUNT", "12345678"),
    ("IBAN DE89 3704 0044 0532 0130 00", "ACCOUNT", "DE89 3704 0044 0532 0130 00"),
    # addresses
    ("서울특별시 강남구 테헤란로 123", "ADDRESS", "서울특별시 강남구 테헤란로 123"),
    ("서울 마포구 월드컵북로 396 입니다", "ADDRESS", "서울 마포구 월드컵북로 396"),
    (
        "경기도 성남시 분당구 판교역로 235 에이치스퀘어 N동 7층",
        "ADDRESS",
        "경기도 성남시 분당구 판교역로 235 에이치스퀘어 N동 7층",
    ),
    ("서울시 종로구 청운동 123-4", "ADDRESS", "서울시 종로구 청운동 123-4"),
    ("경기 수원시 팔달구 인계동 1234번지", "ADDRESS", "경기 수원시 팔달구 인계동 1234번지"),
    ("우편번호 06236", "ADDRESS", "06236"),
    ("at 221B Baker Street today", "ADDRESS", "221B Baker Street"),
    # names (the name only, never the honorific)
    ("김민준 학생 숙제", "NAME", "김민준"),
    ("배수지님이 왔어요", "NAME", "배수지"),
    ("남궁민수 씨", "NAME", "남궁민수"),
    ("제 이름은 윤도현입니다", "NAME", "윤도현"),
    ("저는 한지민입니다", "NAME", "한지민"),
    ("성명: 노은비", "NAME", "노은비"),
    ("my name is John Smith.", "NAME", "John Smith"),
    ("I'm Emily, hi", "NAME", "Emily"),
    ("Name: Sarah Lee", "NAME", "Sarah Lee"),
    ("ask Mr. Smith", "NAME", "Smith"),
    ("Dear Alice,", "NAME", "Alice"),
    ("student Emily Park is late", "NAME", "Emily Park"),
    ("signed, Michael Brown", "NAME", "Michael Brown"),
    # IPs
    ("from 192.168.0.1 today", "IP", "192.168.0.1"),
    ("from 2001:db8::8a2e:370:7334 today", "IP", "2001:db8::8a2e:370:7334"),
]

NEGATIVE = [
    "시험은 2024-03-15 오전 9시",
    "마감 2024.03.15 23:59",
    "가격 15,000원, $1,299.99, 20% 할인",
    "수학 95점",
    "3x + 5 = 20",
    "1234 × 5678 = 7006652",
    "ISBN 978-89-01-23456-7",
    "version 1.2.3.4",
    "버전 1.2.3.4",
    "IP 999.1.1.1",
    "card 4721-5901-0928-1593",  # Luhn-invalid
    "번호 8803141526018",  # checksum-invalid, no hyphen
    "시험 번호 210304-3563214",  # checksum-invalid, no context word
    "번호 991301-1234567",  # month 13
    "임진왜란(1592-1598)",
    "301호 강의실",
    "Order #100234987 shipped",
    "주문번호 20240315-000123",
    "선생님, 고객님, 부모님, 하느님, 사장님 감사합니다",
    "국어 선생님과 원어민 선생님",
    "국가장학생 선발",
    "저는 고등학생입니다",
    "I'm Korean.",
    "Dear Parents, hello",
    "Binary 1010 1100 0011 1111",
    "Time 02:30:15 and 16:9",
]


@pytest.mark.parametrize(("text", "kind", "span"), POSITIVE)
def test_finds_each_kind(text: str, kind: str, span: str) -> None:
    assert (kind, span) in found(text)


@pytest.mark.parametrize("text", NEGATIVE)
def test_leaves_non_pii_alone(text: str) -> None:
    assert found(text) == []


def test_kinds_filter_and_priority() -> None:
    text = "주민번호 880314-1526017, 전화 010-1234-5678"
    assert found(text) == [("RRN", "880314-1526017"), ("PHONE", "010-1234-5678")]
    assert find_pii(text, kinds=[PIIKind.PHONE])[0].text == "010-1234-5678"
    assert find_pii(text, kinds=[]) == []


def test_matches_are_sorted_and_disjoint() -> None:
    text = "김민준 학생 010-1234-5678 kim@naver.com 192.168.0.1 서울 마포구 월드컵북로 396"
    matches = find_pii(text)
    assert [m.kind for m in matches] == [
        PIIKind.NAME,
        PIIKind.PHONE,
        PIIKind.EMAIL,
        PIIKind.IP,
        PIIKind.ADDRESS,
    ]
    assert all(a.end <= b.start for a, b in itertools.pairwise(matches))
    assert all(text[m.start : m.end] == m.text for m in matches)


def test_mask_and_restore_round_trip() -> None:
    text = "김민준 학생, 010-1234-5678 또는 kim@naver.com, 다시 010-1234-5678"
    masked = PIIMasker().mask(text)
    assert masked.text == "[NAME_1] 학생, [PHONE_1] 또는 [EMAIL_1], 다시 [PHONE_1]"
    assert masked.mapping == {
        "[NAME_1]": "김민준",
        "[PHONE_1]": "010-1234-5678",
        "[EMAIL_1]": "kim@naver.com",
    }
    assert restore(masked.text, masked.mapping) == text
    assert restore("[PHONE_9] stays", masked.mapping) == "[PHONE_9] stays"


def test_numbering_is_stable_across_a_chat() -> None:
    masker, mapping = PIIMasker(), {}
    first = masker.mask("call 010-1111-2222", mapping)
    second = masker.mask("or 010-3333-4444, not 010-1111-2222", mapping)
    assert first.mapping is mapping and second.mapping is mapping
    assert second.text == "or [PHONE_2], not [PHONE_1]"
    assert masker.redact("010-3333-4444") == "[PHONE_1]"  # redact keeps no mapping


def test_masker_kinds_and_clean_text() -> None:
    masker = PIIMasker(kinds=[PIIKind.EMAIL])
    assert masker.mask("010-1111-2222 a@b.co").text == "010-1111-2222 [EMAIL_1]"
    assert PIIMasker().mask("no personal data") == Masked("no personal data", {})


def test_mask_messages_copies_and_shares_the_mapping() -> None:
    messages = [
        {"role": "system", "content": "You are a tutor."},
        {"role": "user", "content": "제 번호는 010-1234-5678 입니다", "name": "u1"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "mail kim@naver.com, phone 010-1234-5678"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ],
        },
    ]
    original = copy.deepcopy(messages)
    masked, mapping = PIIMasker().mask_messages(messages)
    assert messages == original
    assert masked[1] == {"role": "user", "content": "제 번호는 [PHONE_1] 입니다", "name": "u1"}
    assert masked[2]["content"][0]["text"] == "mail [EMAIL_1], phone [PHONE_1]"
    assert masked[2]["content"][1] == original[2]["content"][1]
    assert mapping == {"[PHONE_1]": "010-1234-5678", "[EMAIL_1]": "kim@naver.com"}


def test_stream_restorer_at_every_split_point() -> None:
    mapping = {"[PHONE_1]": "010-1234-5678", "[NAME_12]": "김민준", "[EMAIL_1]": "a@b.co"}
    answer = "[NAME_12] 학생, call [PHONE_1] or [EMAIL_1]; [UNKNOWN_1] [PHONE_7] [x] end ["
    expected = restore(answer, mapping)
    for i in range(len(answer) + 1):
        for j in range(i, len(answer) + 1):
            restorer = StreamRestorer(mapping)
            out = "".join(restorer.feed(c) for c in (answer[:i], answer[i:j], answer[j:]))
            assert out + restorer.flush() == expected, (i, j)


def test_stream_restorer_holds_back_little() -> None:
    restorer = StreamRestorer({"[PHONE_1]": "010"})
    assert restorer.feed("hello [PHO") == "hello "
    assert restorer.feed("NE_1] bye [not") == "010 bye [not"
    assert restorer.feed("x" * 30) == "x" * 30
    assert restorer.flush() == ""


# ── Evaluation on the labelled set ─────────────────────────────────────────────────────


def _gold_spans(text: str, items: list[dict[str, str]]) -> list[tuple[str, int, int]]:
    """Gold (kind, start, end); a substring listed twice means its first and second occurrence."""
    seen: Counter[str] = Counter()
    spans = []
    for item in items:
        start = -1
        for _ in range(seen[item["text"]] + 1):
            start = text.index(item["text"], start + 1)
        seen[item["text"]] += 1
        spans.append((item["kind"], start, start + len(item["text"])))
    return spans


def _agrees(gold: tuple[str, int, int], pred: tuple[str, int, int]) -> bool:
    """Same kind, and the prediction covers at least 80 % of the gold span's characters."""
    overlap = min(gold[2], pred[2]) - max(gold[1], pred[1])
    return gold[0] == pred[0] and overlap >= 0.8 * (gold[2] - gold[1])


def test_labelled_set_precision_and_recall() -> None:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 240
    gold_n, pred_n, gold_hit, pred_hit = Counter(), Counter(), Counter(), Counter()
    for row in rows:
        gold = _gold_spans(row["text"], row["pii"])
        pred = [(m.kind.value, m.start, m.end) for m in find_pii(row["text"])]
        for g in gold:
            gold_n[g[0]] += 1
            gold_hit[g[0]] += any(_agrees(g, p) for p in pred)
        for p in pred:
            pred_n[p[0]] += 1
            pred_hit[p[0]] += any(_agrees(g, p) for g in gold)

    def ratio(hit: int, n: int) -> float:
        return hit / n if n else 1.0

    lines = [f"{'kind':8} {'gold':>5} {'pred':>5} {'precision':>9} {'recall':>7}"]
    structured = [k.value for k in STRUCTURED]
    groups = [(k.value, [k.value]) for k in PIIKind]
    groups += [("STRUCT", structured), ("ALL", [k.value for k in PIIKind])]
    table: dict[str, tuple[float, float]] = {}
    for name, kinds in groups:
        g, p = sum(gold_n[k] for k in kinds), sum(pred_n[k] for k in kinds)
        prec = ratio(sum(pred_hit[k] for k in kinds), p)
        rec = ratio(sum(gold_hit[k] for k in kinds), g)
        table[name] = (prec, rec)
        lines.append(f"{name:8} {g:5d} {p:5d} {prec:9.3f} {rec:7.3f}")
    print("\nPII labelled set (" + str(len(rows)) + " sentences)\n" + "\n".join(lines))

    for kind in [*structured, "STRUCT"]:
        assert table[kind][1] >= 0.95, kind
    assert table["NAME"][1] >= 0.8
    for name, (prec, _) in table.items():
        assert prec >= 0.9, name
    assert min(gold_n[k] for k in structured) >= 25 and gold_n["NAME"] >= 40
    assert sum(1 for row in rows if not row["pii"]) >= 60

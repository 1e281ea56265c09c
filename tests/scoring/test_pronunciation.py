"""Pronunciation assessment end to end: scores, per-word detail, timings, hostile input."""

from __future__ import annotations

import difflib
import json
import time
from pathlib import Path

import pytest

from megacity.scoring.pronunciation import (
    MAX_TEXT_CHARS,
    MAX_WORDS,
    Assessment,
    RecognizedWord,
    ScoringConfig,
    assess,
)

# The reference sentences of the shared speech fixtures (../shared/audio/refs.tsv).
EN1 = "The quick brown fox jumps over the lazy dog."
EN2 = "Please schedule the meeting for next Tuesday at three o'clock."
EN3 = "Speech recognition works offline on this small computer."
KO1 = "안녕하세요. 오늘 날씨가 정말 좋네요."
KO2 = "저는 매일 아침 커피를 마십니다."
JA1 = "今日は3時にカフェで会いましょう。"
ZH1 = "我每天早上喝咖啡。"
REFS_TSV = Path(__file__).resolve().parents[3] / "shared" / "audio" / "refs.tsv"

SENTENCES = [
    ("en", EN1),
    ("en", EN2),
    ("en", EN3),
    ("ko", KO1),
    ("ko", KO2),
    ("ja", JA1),
    ("zh", ZH1),
]


def timed(
    text: str,
    word_s: float = 0.3,
    gap_s: float = 0.05,
    pauses: dict[int, float] | None = None,
    probability: float = 0.95,
) -> list[RecognizedWord]:
    """Whisper-like word timings for a space-separated text (pauses: word index → silence)."""
    words, clock = [], 0.0
    for index, word in enumerate(text.split()):
        if index:
            clock += (pauses or {}).get(index, gap_s)
        words.append(RecognizedWord(" " + word, clock, clock + word_s, probability))
        clock += word_s
    return words


def errors(result: Assessment) -> list[tuple[str | None, str | None, str]]:
    return [
        (w.reference, w.recognized, w.error_type) for w in result.words if w.error_type != "none"
    ]


@pytest.mark.parametrize(("language", "sentence"), SENTENCES)
def test_identical_attempt_scores_100(language: str, sentence: str) -> None:
    result = assess(sentence, sentence, language)
    assert result.scores.accuracy == 100.0
    assert result.scores.completeness == 100.0
    assert result.scores.fluency is None
    assert result.scores.overall == 100.0
    assert (result.cer, result.wer) == (0.0, 0.0)
    assert errors(result) == []


@pytest.mark.parametrize(("language", "sentence"), SENTENCES)
def test_identical_fluent_timed_attempt_scores_100_everywhere(language: str, sentence: str) -> None:
    words = timed(sentence)
    if language in ("ja", "zh"):
        # Whisper gives Japanese and Chinese as short pieces without spaces.
        words = [
            RecognizedWord(w.word.strip(), w.start, w.end, w.probability)
            for w in timed(
                " ".join(sentence[i : i + 2] for i in range(0, len(sentence), 2)), word_s=0.4
            )
        ]
    result = assess(sentence, "", language, words=words)
    assert (result.scores.accuracy, result.scores.fluency, result.scores.overall) == (
        100.0,
        100.0,
        100.0,
    )


def test_shared_refs_tsv_sentences_score_100_read_back_plainly() -> None:
    if not REFS_TSV.exists():
        pytest.skip("shared speech fixtures not present")
    rows = [line.split("\t") for line in REFS_TSV.read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) >= 5
    for _, language, sentence in rows:
        # What Whisper typically returns: other case, punctuation dropped.
        plain = "".join(c for c in sentence.lower() if c.isalnum() or c in " '")
        assert assess(sentence, plain, language).scores.overall == 100.0, sentence


def test_one_omitted_word() -> None:
    result = assess(EN1, "the quick brown fox jumps over the dog", "en")
    assert errors(result) == [("lazy", None, "omission")]
    assert result.scores.accuracy == 100.0
    assert result.scores.completeness == 88.9
    assert result.scores.overall == 88.9  # 0.75·100·0.889 + 0.25·88.9
    assert result.wer == pytest.approx(1 / 9, abs=1e-4)


def test_one_inserted_word() -> None:
    result = assess(EN1, "the quick brown fox jumps over the very lazy dog", "en")
    assert errors(result) == [(None, "very", "insertion")]
    assert [w.reference for w in result.words][7:9] == [None, "lazy"]
    assert len(result.words) == 10
    assert result.scores.accuracy == 90.0  # nine words at 100, the extra one at 0
    assert result.scores.completeness == 100.0
    assert result.scores.overall == 92.5
    assert result.wer == pytest.approx(1 / 9, abs=1e-4)


def test_one_substituted_word_gets_partial_credit() -> None:
    result = assess(EN1, "the quick brown box jumps over the lazy dog", "en")
    assert errors(result) == [("fox", "box", "mispronunciation")]
    assert result.words[3].accuracy == 66.7
    assert result.scores.accuracy == 96.3
    assert result.scores.completeness == 100.0
    assert result.cer == pytest.approx(1 / 43, abs=1e-4)


def test_unrelated_word_is_omission_plus_insertion() -> None:
    result = assess(EN1, "the quick brown cat jumps over the lazy dog", "en")
    assert errors(result) == [("fox", None, "omission"), (None, "cat", "insertion")]
    assert result.scores.completeness == 88.9


@pytest.mark.parametrize(
    ("language", "reference", "reordered", "moved"),
    [
        ("en", EN1, "the quick brown dog jumps over the lazy fox", {"fox", "dog"}),
        ("en", EN2, "please schedule the meeting for tuesday next at three o'clock", {"Tuesday"}),
        ("ko", KO2, "매일 아침 저는 커피를 마십니다", {"저는"}),
    ],
)
def test_reordered_sentence_is_penalised_unlike_sequence_matcher(
    language: str, reference: str, reordered: str, moved: set[str]
) -> None:
    old_score = 100 * difflib.SequenceMatcher(None, reordered, reference).ratio()
    result = assess(reference, reordered, language)
    assert old_score > 79.0  # the old design called these nearly right, with no detail
    assert result.scores.overall < old_score - 5
    assert result.scores.completeness < 100.0
    assert result.wer >= 0.2
    omitted = {w.reference for w in result.words if w.error_type == "omission"}
    inserted = {w.recognized for w in result.words if w.error_type == "insertion"}
    assert omitted == moved
    assert {m.lower() for m in moved} <= inserted


def test_korean_spacing_is_not_a_pronunciation_error() -> None:
    for attempt in ("안녕하세요 오늘 날씨가 정말좋네요", "안녕하세요오늘날씨가정말좋네요"):
        result = assess(KO1, attempt, "ko")
        assert result.scores.overall == 100.0
        assert (result.cer, result.wer) == (0.0, 0.0)
        assert [w.reference for w in result.words] == [
            "안녕하세요",
            "오늘",
            "날씨가",
            "정말",
            "좋네요",
        ]
        assert result.words[4].recognized == "좋네요"


def test_korean_one_jamo_difference_gets_partial_credit_and_names_the_jamo() -> None:
    result = assess(KO1, "안녕하세요 오늘 날씨가 정말 존네요", "ko")
    word = result.words[4]
    assert (word.reference, word.recognized, word.error_type) == (
        "좋네요",
        "존네요",
        "mispronunciation",
    )
    assert word.accuracy == 88.9  # (2/3 + 1 + 1) / 3
    syllables = [s for s in result.to_dict()["words"][4]["syllables"] if s["error_type"] != "none"]
    assert syllables == [
        {
            "reference": "좋",
            "recognized": "존",
            "accuracy": 66.7,
            "error_type": "mispronunciation",
            "differences": [{"position": "jongseong", "expected": "ㅎ", "got": "ㄴ"}],
        }
    ]
    assert result.scores.accuracy == 97.8
    assert result.scores.completeness == 100.0


def test_korean_syllable_omitted_inside_a_word() -> None:
    result = assess(KO2, "저는 매일 아침 커피를 마십다", "ko")
    word = result.words[4]
    assert word.error_type == "mispronunciation"
    assert word.accuracy == 75.0
    assert [(s.reference, s.error_type) for s in word.syllables] == [
        ("마", "none"),
        ("십", "none"),
        ("니", "omission"),
        ("다", "none"),
    ]


def test_korean_wrong_particle_stays_inside_the_word() -> None:
    result = assess(KO2, "저는 매일 아침 커피만 마십니다", "ko")
    assert errors(result) == [("커피를", "커피만", "mispronunciation")]
    assert result.words[3].accuracy == 66.7
    assert [(s.reference, s.recognized, s.error_type) for s in result.words[3].syllables][2:] == [
        ("를", None, "omission"),
        (None, "만", "insertion"),
    ]


def test_korean_inserted_words_are_reported_per_word() -> None:
    result = assess(KO1, "안녕하세요 오늘 음 날씨가 진짜 정말 좋네요", "ko")
    assert errors(result) == [(None, "음", "insertion"), (None, "진짜", "insertion")]
    assert result.scores.completeness == 100.0
    assert result.scores.accuracy == pytest.approx(500 / 7, abs=0.05)


@pytest.mark.parametrize(
    ("language", "reference", "attempt"),
    [
        ("en", EN2, "please schedule the meeting for next tuesday at 3 o'clock"),
        ("en", "Please schedule the meeting for next Tuesday at 3 o'clock.", EN2),
        ("en", "I have 21 apples and 100 pears.", "i have twenty-one apples and one hundred pears"),
        ("en", "It costs 3.5 dollars.", "it costs three point five dollars"),
        ("en", "She finished 3rd.", "she finished third"),
        ("ko", "저는 사과 3개를 먹었어요.", "저는 사과 세 개를 먹었어요"),
        ("ko", "3시에 만나요.", "세시에 만나요"),
        ("ko", "3개월 동안 공부했어요.", "삼 개월 동안 공부했어요"),
        ("ko", "오늘은 3월 15일입니다.", "오늘은 삼월 십오일입니다"),
        ("ja", JA1, "今日は三時にカフェで会いましょう"),
        ("zh", "我有3本书。", "我有三本书"),
        ("zh", "一百零一", "101"),
    ],
)
def test_digits_and_spelled_numbers_are_the_same_speech(
    language: str, reference: str, attempt: str
) -> None:
    result = assess(reference, attempt, language)
    assert errors(result) == []
    assert result.scores.overall == 100.0


def test_number_word_keeps_its_written_form() -> None:
    result = assess("I have 21 apples.", "i have 22 apples", "en")
    word = result.words[2]
    assert (word.reference, word.recognized, word.error_type) == (
        "21",
        "twenty two",
        "mispronunciation",
    )
    assert word.accuracy == 50.0


def test_japanese_katakana_and_hiragana_are_the_same_sound() -> None:
    result = assess(JA1, "今日は3時にかふぇで会いましょう", "ja")
    assert result.scores.overall == 100.0


def test_japanese_voicing_mark_alone_is_half_wrong() -> None:
    result = assess("かがみ", "かかみ", "ja")
    assert errors(result) == [("が", "か", "mispronunciation")]
    assert result.words[1].accuracy == 50.0
    assert result.scores.accuracy == 83.3


def test_chinese_characters_are_the_words() -> None:
    result = assess(ZH1, "我每天晚上喝咖啡", "zh")
    assert [w.reference for w in result.words][:5] == ["我", "每", "天", "早", None]
    assert errors(result) == [("早", None, "omission"), (None, "晚", "insertion")]
    assert result.scores.completeness == 87.5
    assert result.cer == pytest.approx(1 / 8, abs=1e-4)


def test_english_case_punctuation_and_full_width_do_not_matter() -> None:
    result = assess(EN3, "ＳＰＥＥＣＨ recognition, works offline on this small computer!!", "en")
    assert result.scores.overall == 100.0


def test_long_pause_is_an_unexpected_break_in_read_mode_but_not_in_singalong() -> None:
    words = timed("the quick brown fox jumps over the lazy dog", pauses={4: 1.5})
    read = assess(EN1, "", "en", mode="read", words=words)
    assert [(w.reference, w.pause_before) for w in read.words if w.unexpected_break] == [
        ("jumps", 1.5)
    ]
    assert read.scores.fluency is not None and read.scores.fluency < 90.0
    singalong = assess(EN1, "", "en", mode="singalong", words=words)
    assert not any(w.unexpected_break for w in singalong.words)
    assert singalong.scores.fluency == 100.0
    shadowing = assess(EN1, "", "en", mode="shadowing", words=words)
    fluencies = [r.scores.fluency or 0.0 for r in (read, shadowing, singalong)]
    assert fluencies == sorted(fluencies) and len(set(fluencies)) == 3


def test_slow_halting_speech_is_less_fluent_than_fluent_speech() -> None:
    text = "the quick brown fox jumps over the lazy dog"
    fluent = assess(EN1, "", "en", words=timed(text))
    halting = assess(EN1, "", "en", words=timed(text, word_s=0.6, gap_s=1.2))
    assert fluent.scores.fluency == 100.0
    assert halting.scores.fluency == pytest.approx(32.4, abs=0.1)
    assert fluent.scores.accuracy == halting.scores.accuracy == 100.0
    assert halting.scores.overall < fluent.scores.overall
    assert sum(w.unexpected_break for w in halting.words) == 8


def test_missing_break_after_a_sentence_end() -> None:
    words = timed("안녕하세요 오늘 날씨가 정말 좋네요", gap_s=0.0)
    result = assess(KO1, "", "ko", words=words)
    assert [w.reference for w in result.words if w.missing_break] == ["오늘"]


def test_word_timings_are_reported_and_shared_across_syllables() -> None:
    words = [
        RecognizedWord(" 안녕하세요.", 0.0, 1.0, 0.99),
        RecognizedWord(" 오늘", 1.2, 1.6, 0.9),
        RecognizedWord(" 날씨가", 1.65, 2.1, 0.9),
        RecognizedWord(" 정말좋네요.", 2.15, 3.15, 0.8),
    ]
    result = assess(KO1, "ignored when words are given", "ko", words=words)
    assert result.scores.overall == 100.0
    timing = [(w.reference, w.start, w.end, w.confidence) for w in result.words]
    assert timing == [
        ("안녕하세요", 0.0, 1.0, 0.99),
        ("오늘", 1.2, 1.6, 0.9),
        ("날씨가", 1.65, 2.1, 0.9),
        ("정말", 2.15, 2.55, 0.8),  # two of the five syllables of one recognised word
        ("좋네요", 2.55, 3.15, 0.8),
    ]


def test_words_without_leading_spaces_are_still_separate_words() -> None:
    spaced = assess(EN1, "", "en", words=timed("the quick brown fox jumps over the lazy dog"))
    bare_words = [
        RecognizedWord(w.word.strip(), w.start, w.end, w.probability)
        for w in timed("the quick brown fox jumps over the lazy dog")
    ]
    bare = assess(EN1, "", "en", words=bare_words)
    assert bare == spaced


def test_low_confidence_lowers_accuracy_of_an_exact_word() -> None:
    words = timed("the quick brown fox")
    words[3] = RecognizedWord(" fox", words[3].start, words[3].end, 0.3)
    result = assess("The quick brown fox", "", "en", words=words)
    assert [w.accuracy for w in result.words] == [100.0, 100.0, 100.0, 90.0]
    assert result.words[3].error_type == "none"
    assert result.words[3].confidence == 0.3
    assert result.scores.accuracy == 97.5


def test_without_timings_fluency_is_none_and_overall_reweighted() -> None:
    result = assess(EN1, "the quick brown box jumps over the lazy dog", "en")
    assert result.scores.fluency is None
    assert all(w.start is None and w.confidence is None for w in result.words)
    accuracy = (8 * 100 + 200 / 3) / 9
    assert result.scores.overall == pytest.approx(0.75 * accuracy + 25.0, abs=0.05)


def test_overall_counts_accuracy_only_for_the_spoken_share() -> None:
    reference = " ".join(f"word{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(30))
    first = reference.split()[0]
    result = assess(reference, "", "en", words=[RecognizedWord(" " + first, 0.0, 0.4, 0.99)])
    assert result.scores.accuracy == 100.0
    assert result.scores.completeness == 3.3
    assert result.scores.overall == pytest.approx(100 / 30, abs=0.05)


def test_custom_weights() -> None:
    config = ScoringConfig(accuracy_weight=0.5, fluency_weight=0.0, completeness_weight=0.5)
    result = assess(EN1, "the quick brown fox jumps over the dog", "en", config=config)
    assert result.scores.overall == pytest.approx(0.5 * 100 * 8 / 9 + 0.5 * 800 / 9, abs=0.05)


@pytest.mark.parametrize(("language", "sentence"), SENTENCES)
def test_empty_transcript_is_all_omissions(language: str, sentence: str) -> None:
    for result in (
        assess(sentence, "", language),
        assess(sentence, "  ...  ", language, words=None),
        assess(sentence, "", language, words=[]),
    ):
        assert result.scores.completeness == 0.0
        assert result.scores.accuracy == 0.0
        assert result.scores.overall == 0.0
        assert (result.cer, result.wer) == (1.0, 1.0)
        assert {w.error_type for w in result.words} == {"omission"}


def test_timings_with_nothing_heard_have_zero_fluency() -> None:
    result = assess(EN1, "", "en", words=[RecognizedWord(" ...", 0.0, 1.0, 0.2)])
    assert result.scores.fluency == 0.0
    assert result.scores.overall == 0.0


def test_to_dict_is_json_ready() -> None:
    result = assess(KO1, "", "ko", words=timed("안녕하세요 오늘 날씨가 정말 존네요"))
    data = result.to_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert set(data) == {"language", "mode", "scores", "cer", "wer", "words"}
    assert set(data["scores"]) == {"accuracy", "completeness", "fluency", "prosody", "overall"}
    assert data["scores"]["prosody"] is None  # no reference recording
    assert set(data["words"][0]) == {
        "reference",
        "recognized",
        "error_type",
        "accuracy",
        "start",
        "end",
        "confidence",
        "pause_before",
        "unexpected_break",
        "missing_break",
        "syllables",
    }
    assert isinstance(data["words"], list)
    assert isinstance(data["words"][0]["syllables"], list)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"language": "fr"}, "unsupported language"),
        ({"language": "KO"}, "unsupported language"),
        ({"mode": "karaoke"}, "unsupported mode"),
        ({"transcript": None}, "must be a string"),
        ({"reference_text": "x" * (MAX_TEXT_CHARS + 1)}, "reference_text is longer"),
        ({"transcript": "가" * (MAX_TEXT_CHARS + 1)}, "transcript is longer"),
        ({"reference_text": "...!?"}, "no words to score"),
        ({"words": [RecognizedWord("hi", 0.0, 0.1)] * (MAX_WORDS + 1)}, "more than"),
        ({"words": [RecognizedWord("x" * (MAX_TEXT_CHARS + 1), 0.0, 1.0)]}, "longer than"),
        ({"words": [RecognizedWord("hi", 1.0, 0.5)]}, "start <= end"),
        ({"words": [RecognizedWord("hi", -1.0, 0.5)]}, "start <= end"),
        ({"words": [RecognizedWord("hi", 0.0, float("nan"))]}, "finite"),
        ({"words": [RecognizedWord("hi", 0.0, float("inf"))]}, "finite"),
        ({"words": [RecognizedWord("hi", 0.0, 0.5, 1.5)]}, "probability"),
        ({"words": [RecognizedWord("hi", 0.0, 0.5, float("nan"))]}, "probability"),
    ],
)
def test_hostile_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    call: dict[str, object] = {"reference_text": EN1, "transcript": "hi", "language": "en"}
    call.update(kwargs)
    with pytest.raises(ValueError, match=message):
        assess(**call)  # type: ignore[arg-type]


@pytest.mark.parametrize("language", ["en", "ko", "zh"])
def test_longest_allowed_texts_are_scored_quickly(language: str) -> None:
    alphabet = {"en": "abcdefghij  ", "ko": "가나다라마바사아자차 ", "zh": "我每天早上喝咖啡茶"}[
        language
    ]
    reference = "".join(alphabet[(i * 7 + i // 13) % len(alphabet)] for i in range(MAX_TEXT_CHARS))
    attempt = "".join(alphabet[(i * 5 + i // 11) % len(alphabet)] for i in range(MAX_TEXT_CHARS))
    started = time.perf_counter()
    unrelated = assess(reference, attempt, language)
    near = assess(reference, reference[:2000] + reference[2100:], language)
    assert time.perf_counter() - started < 10.0
    assert 0.0 <= unrelated.scores.overall < near.scores.overall
    assert near.scores.completeness > 95.0


def test_prosody_counts_in_overall_with_the_modes_weights() -> None:
    text = "the quick brown fox jumps over the lazy dog"
    words = timed(text)
    plain = assess(text, text, "en", "shadowing", words)
    for mode, weight in (("shadowing", 0.2), ("singalong", 0.4)):
        best = assess(text, text, "en", mode, words, prosody=100.0)
        worst = assess(text, text, "en", mode, words, prosody=0.0)
        assert best.scores.prosody == 100.0 and worst.scores.prosody == 0.0
        assert best.scores.overall - worst.scores.overall == pytest.approx(100 * weight, abs=0.2)
    assert plain.scores.prosody is None
    assert (
        assess(text, text, "en", "read", words, prosody=0.0).scores.overall == plain.scores.overall
    )
    half = assess(text, "the quick brown fox", "en", "singalong", None, prosody=100.0)
    # Without timings: accuracy, prosody and completeness 0.3 : 0.4 : 0.2, renormalised.
    c = half.scores.completeness
    expected = c / 100 * (0.3 * half.scores.accuracy + 0.4 * 100) / 0.9 + 0.2 / 0.9 * c
    assert half.scores.overall == pytest.approx(expected, abs=0.1)
    with pytest.raises(ValueError, match="prosody"):
        assess(text, text, "en", "singalong", prosody=120.0)

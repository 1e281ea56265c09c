"""Text moderation: the KR/EN lexicon, idioms and Scunthorpe words, the LLM hook, chains."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from megacity.safety.moderation import (
    HELP_RESOURCES,
    LLM_SYSTEM_PROMPT,
    Category,
    ChainModerator,
    LexiconModerator,
    LLMModerator,
    ModerationError,
    ModerationResult,
    Moderator,
    load_moderator,
    parse_llm_verdict,
)

DATA = Path(__file__).parent / "data" / "moderation_labelled.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
ABUSE = {"toxicity", "harassment", "hate", "violence", "sexual"}
Complete = Callable[[list[dict[str, str]]], Awaitable[str]]


@pytest.fixture(scope="module")
def moderator() -> LexiconModerator:
    return LexiconModerator()


# ---- lexicon ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        *(
            (w, Category.TOXICITY)
            for w in ["씨발", "시발 뭐야", "ㅅㅂ", "씨1발", "시ㅂ", "ㅆㅂ", "씹새끼"]
        ),
        *(
            (w, Category.TOXICITY)
            for w in ["병신", "ㅂㅅ", "븅신", "개새끼", "개색기", "ㄱㅅㄲ", "좆같네"]
        ),
        *(
            (w, Category.TOXICITY)
            for w in ["닥쳐", "꺼져", "미친놈", "미친년", "지랄하네", "ㅅㅣㅂㅏㄹ"]
        ),
        ("엠창", Category.HARASSMENT),
        ("느금마", Category.HARASSMENT),
        ("니애미", Category.HARASSMENT),
        ("한남충", Category.HATE),
        ("김치녀", Category.HATE),
        *(
            (w, Category.TOXICITY)
            for w in ["fuck you", "f*ck", "fuuuck", "sh1t", "b!tch", "a$$hole"]
        ),
        ("you absolute idiot", Category.TOXICITY),
        ("retard", Category.HATE),
        ("kys", Category.HARASSMENT),
        ("k y s", Category.HARASSMENT),
        ("kill yourself", Category.HARASSMENT),
        ("I'm going to kill you", Category.VIOLENCE),
        ("죽여버릴 거야", Category.VIOLENCE),
        ("send nudes", Category.SEXUAL),
    ],
)
def test_abuse_is_flagged(moderator: LexiconModerator, text: str, category: Category) -> None:
    result = moderator.classify(text)
    assert result.flagged, result
    assert category in result.categories


@pytest.mark.parametrize(
    "text",
    [
        "시발점이 어디야?",
        "2016년은 병신년(丙申年)이었다",
        "병신년에 태어난 사람은 몇 살이야?",
        "시발자동차는 한국 최초의 자동차야",
        "시바견 키우는 법",
        "새끼손가락을 다쳤어",
        "닥쳐올 위기에 대비하자",
        "시험이 코앞에 닥쳐서 걱정이야",
        "방에 불이 꺼져 있어",
        "지랄탄이 뭐야?",
        "껌을 씹는 습관",
        "18번 문제 풀이",
        "My class assessment is on Monday",
        "I'm from Scunthorpe",
        "The pilot sat in the cockpit",
        "Write an analysis of the poem",
        "shiitake and shitake mushrooms",
        "fire-retardant curtains",
        "summa cum laude",
        "What does the word 'bitch' mean in dog breeding?",
    ],
)
def test_scunthorpe_words_pass(moderator: LexiconModerator, text: str) -> None:
    assert not moderator.classify(text).flagged, moderator.classify(text)


def test_jonna_is_mild_alone_and_counts_with_an_insult(moderator: LexiconModerator) -> None:
    alone = moderator.classify("이 문제 존나 어렵네")
    assert not alone.flagged
    assert 0.0 < alone.scores[Category.TOXICITY] < 0.5
    assert moderator.classify("존나 멍청하네").flagged


@pytest.mark.parametrize(
    "text",
    [
        "죽고 싶어",
        "자살하고 싶다",
        "살기 싫어",
        "손목을 그었어",
        "사라지고 싶어",
        "죽 고 싶 다",
        "I want to die",
        "I want to kill myself",
        "I've been cutting myself again",
        "I keep thinking about ending it all",
        "i w4nt t0 d1e",
    ],
)
def test_self_harm_is_flagged(moderator: LexiconModerator, text: str) -> None:
    result = moderator.classify(text)
    assert result.categories[:1] == (Category.SELF_HARM,), result


@pytest.mark.parametrize(
    "text",
    [
        "this homework is killing me",
        "I could die of embarrassment",
        "I'm dying to see BTS live",
        "죽을 만큼 배고파",
        "웃겨 죽겠네",
        "배고파 죽겠다",
        "이 노래 진짜 죽인다",
        "I cut myself while cooking, how do I clean it?",
        "What is the suicide rate in Korea? It's for my report.",
        "자살예방 캠페인 포스터 문구를 만들어줘",
        "사라지고 싶을 만큼 아쉬워",
    ],
)
def test_idioms_and_informational_mentions_pass(moderator: LexiconModerator, text: str) -> None:
    assert not moderator.classify(text).flagged, moderator.classify(text)


def test_help_resources_name_the_korean_lines() -> None:
    assert "109" in HELP_RESOURCES["ko"] and "1388" in HELP_RESOURCES["ko"]
    assert "emergency" in HELP_RESOURCES["en"] and "109" in HELP_RESOURCES["en"]


def test_result_shape(moderator: LexiconModerator) -> None:
    result = moderator.classify("씨발 죽고 싶다")
    assert set(result.scores) == set(Category)
    assert set(result.categories) == {Category.TOXICITY, Category.SELF_HARM}
    assert result.reasons == ("ko.ssibal", "ko.want_to_die")
    clean = moderator.classify("Explain photosynthesis.")
    assert clean == ModerationResult(False, (), {c: 0.0 for c in Category}, ())
    assert asyncio.run(moderator.moderate("씨발", direction="output")) == moderator.classify("씨발")
    with pytest.raises(ValueError, match="threshold"):
        LexiconModerator(threshold=1.5)


# ---- LLM hook ---------------------------------------------------------------------------


def _canned(answer: str, seen: list[list[dict[str, str]]] | None = None) -> Complete:
    async def complete(messages: list[dict[str, str]]) -> str:
        if seen is not None:
            seen.append(messages)
        return answer

    return complete


def test_llm_moderator_parses_a_verdict() -> None:
    seen: list[list[dict[str, str]]] = []
    answer = '```json\n{"flagged": true, "categories": ["harassment"], "scores": {"harassment": 0.9}}\n```'
    llm = LLMModerator(_canned(answer, seen))
    result = asyncio.run(llm.moderate("you are worthless", direction="input"))
    assert result.flagged and result.categories == (Category.HARASSMENT,)
    assert result.scores[Category.HARASSMENT] == 0.9 and result.reasons == ("llm", "llm.harassment")
    system, user = seen[0]
    assert system == {"role": "system", "content": LLM_SYSTEM_PROMPT}
    assert "<text>\nyou are worthless\n</text>" in user["content"] and "a user" in user["content"]


@pytest.mark.parametrize(
    "raw",
    [
        "I think it is fine",
        "[]",
        '{"flagged": "yes"}',
        '{"flagged": true, "categories": []}',
        '{"flagged": true, "categories": ["spam"]}',
        '{"flagged": false, "categories": [], "scores": {"hate": 7}}',
    ],
)
def test_llm_verdict_parsing_is_strict(raw: str) -> None:
    with pytest.raises(ModerationError):
        parse_llm_verdict(raw)


def test_llm_moderator_raises_or_falls_back_on_garbage() -> None:
    with pytest.raises(ModerationError, match="not JSON"):
        asyncio.run(LLMModerator(_canned("sure!")).moderate("hi", direction="output"))
    llm = LLMModerator(_canned("sure!"), fallback=LexiconModerator())
    result = asyncio.run(llm.moderate("씨발", direction="input"))
    assert result.flagged and result.reasons[0] == "llm.fallback"


def test_llm_moderator_times_out() -> None:
    async def hang(messages: list[dict[str, str]]) -> str:
        await asyncio.sleep(60)
        return "{}"

    start = time.perf_counter()
    with pytest.raises(ModerationError, match=r"within 0\.05 s"):
        asyncio.run(LLMModerator(hang, timeout_s=0.05).moderate("hi", direction="input"))
    assert time.perf_counter() - start < 2
    fallback = asyncio.run(
        LLMModerator(hang, timeout_s=0.05, fallback=LexiconModerator()).moderate(
            "hi", direction="input"
        )
    )
    assert not fallback.flagged and fallback.reasons == ("llm.fallback",)


def test_llm_moderator_engine_error_is_a_moderation_error() -> None:
    async def broken(messages: list[dict[str, str]]) -> str:
        raise ConnectionError("node down")

    with pytest.raises(ModerationError, match="ConnectionError: node down"):
        asyncio.run(LLMModerator(broken).moderate("hi", direction="input"))


# ---- chain and loading ------------------------------------------------------------------


def test_chain_flags_when_any_flags_and_merges() -> None:
    llm = LLMModerator(
        _canned('{"flagged": true, "categories": ["hate"], "scores": {"hate": 0.8}}')
    )
    chain = ChainModerator([LexiconModerator(), llm])
    result = asyncio.run(chain.moderate("씨발", direction="input"))
    assert set(result.categories) == {Category.TOXICITY, Category.HATE}
    assert result.reasons == ("ko.ssibal", "llm", "llm.hate")
    quiet = ChainModerator([LexiconModerator(), LLMModerator(_canned('{"flagged": false}'))])
    assert not asyncio.run(quiet.moderate("hello", direction="output")).flagged
    with pytest.raises(ValueError):
        ChainModerator([])


def make_strict_lexicon(threshold: float = 0.3) -> Moderator:
    """A factory for ``load_moderator`` (used by the test below)."""
    return LexiconModerator(threshold=threshold)


def not_a_moderator() -> object:
    return object()


def test_load_moderator() -> None:
    assert isinstance(load_moderator(None), LexiconModerator)
    assert isinstance(load_moderator("lexicon", threshold=0.7), LexiconModerator)
    loaded = load_moderator("tests.safety.test_moderation:make_strict_lexicon", threshold=0.2)
    assert isinstance(loaded, LexiconModerator) and loaded.threshold == 0.2
    for bad in ("nonsense", "no.such.module:factory", "tests.safety.test_moderation:missing"):
        with pytest.raises(ValueError, match="moderator"):
            load_moderator(bad)
    with pytest.raises(ValueError, match="no async moderate"):
        load_moderator("tests.safety.test_moderation:not_a_moderator")


# ---- the labelled set -------------------------------------------------------------------


def test_labelled_set_is_large_enough() -> None:
    labels = Counter("abuse" if r["label"] in ABUSE else r["label"] for r in ROWS)
    assert labels["abuse"] >= 100 and labels["self_harm"] >= 50 and labels["benign"] >= 250
    assert {r["lang"] for r in ROWS} == {"ko", "en"}


def test_labelled_set_recall_and_false_positives(moderator: LexiconModerator) -> None:
    """round1 was written before the lexicon; round2 after it (first look: 28/34 caught,
    0/26 false positives), then used to widen the lexicon."""
    n, hit, right = Counter[str](), Counter[str](), Counter[str]()
    for row in ROWS:
        result = moderator.classify(row["text"])
        label = row["label"]
        keys = [label, f"{label}/{row['lang']}", f"{label}/{row.get('split', 'round1')}"]
        if label in ABUSE:
            keys.append("abuse (any category)")
        if label == "benign" and row.get("tricky"):
            keys.append("benign/tricky")
        for key in keys:
            n[key] += 1
            hit[key] += result.flagged
            right[key] += label in result.categories
    print("\nmoderation, labelled KR/EN set (for benign rows 'flagged' is the false-positive rate)")
    print(f"{'label':<28}{'n':>5}{'flagged':>10}{'right category':>16}")
    for key in sorted(n):
        print(f"{key:<28}{n[key]:>5}{hit[key] / n[key]:>10.3f}{right[key] / n[key]:>16.3f}")
    assert hit["abuse (any category)"] / n["abuse (any category)"] >= 0.9
    assert hit["toxicity"] / n["toxicity"] >= 0.9
    assert right["self_harm"] / n["self_harm"] >= 0.9
    assert hit["benign"] / n["benign"] <= 0.02


def test_classify_is_fast(moderator: LexiconModerator) -> None:
    text = (
        "Can you check my essay introduction for grammar mistakes? Technology have changed the "
        "way we learn, and I think schools should teach students how to use it. 선생님이 두 번째 "
        "문단이 약하다고 하셨는데 어떻게 고치면 좋을까? 예시 문장도 하나 보여줘."
    )
    runs = 500
    start = time.perf_counter()
    for _ in range(runs):
        moderator.classify(text)
    per_call = (time.perf_counter() - start) / runs
    print(f"\nclassify(): {per_call * 1e6:.1f} µs for {len(text)} characters")
    assert per_call < 2e-3

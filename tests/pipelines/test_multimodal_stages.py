"""The tutor's stages on their own: plan, extraction runner, JSON stream, checks, composer, cache."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any, ClassVar, cast

import pytest
from pydantic import BaseModel

from megacity.config.multimodal import MultimodalPolicy, StageDeadlines
from megacity.engines.upload import MediaUpload
from megacity.errors import BadRequest, MegaCityError, ServiceUnavailable, UnsupportedMediaType
from megacity.observability.metrics import Metrics
from megacity.pipelines.multimodal.cache import FeatureCache
from megacity.pipelines.multimodal.compose import deterministic, scores_of
from megacity.pipelines.multimodal.extract import Outcome, extract
from megacity.pipelines.multimodal.extractors import Extractor, Job, Tools, Unavailable
from megacity.pipelines.multimodal.findings import Anchor, Findings, Point
from megacity.pipelines.multimodal.fuse import Features, fuse, prompt_json
from megacity.pipelines.multimodal.jsonstream import JsonTextStream
from megacity.pipelines.multimodal.llm import parse_json
from megacity.pipelines.multimodal.plan import Plan, choose, plan_for
from megacity.pipelines.multimodal.reason import Feedback, Fix, check
from megacity.pipelines.multimodal.request import Media, Scenario, TutorRequest
from megacity.routing.context import RequestContext

VIDEO = Media.of("video", MediaUpload(b"v" * 10, "v.mp4", "video/mp4"))
AUDIO = Media.of("audio", MediaUpload(b"a" * 10, "a.wav", "audio/wav"))
IMAGE = Media.of("image", MediaUpload(b"i" * 10, "i.png", "image/png"))
REF = "0" * 32


# ---- input routing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "scenario"),
    [
        (TutorRequest(video=VIDEO, reference_id=REF), Scenario.DANCE_COACH),
        (TutorRequest(images=(IMAGE,), reference_id=REF), Scenario.DANCE_COACH),
        (TutorRequest(video=VIDEO, script="대사"), Scenario.DRAMA_COACH),
        (TutorRequest(audio=AUDIO, script="line"), Scenario.DRAMA_COACH),
        (TutorRequest(images=(IMAGE,), text="이 문제 풀어줘"), Scenario.HOMEWORK),
        (TutorRequest(video=VIDEO, text="what's wrong with my dance?"), Scenario.DANCE_COACH),
        (TutorRequest(video=VIDEO, text="이 안무 봐 줘"), Scenario.DANCE_COACH),
        (TutorRequest(video=VIDEO), Scenario.GENERAL),
        (TutorRequest(audio=AUDIO), Scenario.GENERAL),
        (TutorRequest(text="hello"), Scenario.GENERAL),
        (TutorRequest(images=(IMAGE,), scenario=Scenario.GENERAL), Scenario.GENERAL),
    ],
)
def test_auto_picks_the_scenario_from_what_was_sent(
    request_: TutorRequest, scenario: Scenario
) -> None:
    assert choose(request_) is scenario


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (TutorRequest(text="x", scenario=Scenario.DANCE_COACH), "missing_media"),
        (TutorRequest(images=(IMAGE,), scenario=Scenario.DRAMA_COACH), "missing_media"),
        (TutorRequest(video=VIDEO, scenario=Scenario.DRAMA_COACH), "missing_script"),
        (TutorRequest(audio=AUDIO, scenario=Scenario.HOMEWORK), "missing_media"),
    ],
)
def test_a_scenario_without_its_media_is_a_400(request_: TutorRequest, code: str) -> None:
    with pytest.raises(BadRequest) as info:
        plan_for(request_)
    assert info.value.code == code


def test_request_checks_and_fingerprints() -> None:
    with pytest.raises(BadRequest) as info:
        TutorRequest().check()
    assert info.value.code == "empty_request"
    with pytest.raises(BadRequest):
        TutorRequest(text="x", level="expert").check()
    with pytest.raises(BadRequest):
        TutorRequest(text="x", language="fr").check()
    a = TutorRequest(video=VIDEO, text="hi")
    assert a.fingerprint() == TutorRequest(video=VIDEO, text="hi ").fingerprint()
    assert a.fingerprint() != TutorRequest(video=VIDEO, text="hi", locale="en").fingerprint()
    assert TutorRequest(script="저는 학생입니다").spoken_language() == "ko"
    assert TutorRequest(script="I am a student", locale="ko").spoken_language() == "en"


# ---- extraction -------------------------------------------------------------------


class Signal(BaseModel):
    value: int


def _fake(name: str, behaviour: Any) -> Extractor:
    class Fake(Extractor):
        features: ClassVar[type[BaseModel]] = Signal

        def applies(self, request: TutorRequest) -> bool:
            return True

        async def extract(self, job: Job) -> BaseModel:
            return cast(BaseModel, await behaviour())

        def findings(self, features: Any) -> Findings:
            return Findings()

    Fake.name = name
    return Fake(cast(Tools, None))


def _sleep(seconds: float, value: int = 1) -> Any:
    async def run() -> Signal:
        await asyncio.sleep(seconds)
        return Signal(value=value)

    return run


def _raise(exc: Exception) -> Any:
    async def run() -> Signal:
        raise exc

    return run


def _job() -> Job:
    return Job(
        RequestContext(request_id="t"),
        TutorRequest(text="x"),
        Scenario.GENERAL,
        time.perf_counter(),
    )


def _run(
    extractors: dict[str, Extractor],
    required: tuple[str, ...],
    optional: tuple[str, ...],
    **deadlines: float,
) -> list[Outcome]:
    plan = Plan(Scenario.GENERAL, required, optional, False, "anything")

    async def go() -> list[Outcome]:
        return [
            o
            async for o in extract(
                extractors, plan, _job(), StageDeadlines(**deadlines), lambda: 60.0, Metrics()
            )
        ]

    return asyncio.run(go())


def test_extractors_run_in_parallel_and_come_out_as_they_finish() -> None:
    extractors = {
        "a": _fake("a", _sleep(0.6, 1)),
        "b": _fake("b", _sleep(0.2, 2)),
        "c": _fake("c", _sleep(0.4, 3)),
    }
    began = time.perf_counter()
    outcomes = _run(extractors, (), ("a", "b", "c"))
    wall = time.perf_counter() - began
    assert [o.name for o in outcomes] == ["b", "c", "a"]
    assert wall < 1.1  # not the 1.2 s sum
    assert all(o.ok for o in outcomes)


def test_an_optional_failure_is_degraded_not_fatal() -> None:
    extractors = {
        "ok": _fake("ok", _sleep(0.05)),
        "down": _fake("down", _raise(ServiceUnavailable("pose node down"))),
        "empty": _fake("empty", _raise(Unavailable("no_face", "no face in 10 frames"))),
        "bug": _fake("bug", _raise(KeyError("oops"))),
    }
    outcomes = {o.name: o for o in _run(extractors, (), tuple(extractors))}
    assert outcomes["ok"].ok
    assert (outcomes["down"].reason, outcomes["empty"].reason, outcomes["bug"].reason) == (
        "no_capacity",
        "no_face",
        "failed",
    )


def test_a_slow_extractor_meets_its_own_deadline() -> None:
    extractors = {"vision": _fake("vision", _sleep(30)), "pose": _fake("pose", _sleep(0.1))}
    began = time.perf_counter()
    outcomes = {o.name: o for o in _run(extractors, (), ("vision", "pose"), vision=0.3)}
    assert time.perf_counter() - began < 5
    assert outcomes["vision"].reason == "timeout" and outcomes["pose"].ok


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (UnsupportedMediaType("no audio", code="no_audio_stream"), 415, "no_audio_stream"),
        (ServiceUnavailable("down"), 503, "engine_unavailable"),
        (Unavailable("no_person", "nobody"), 422, "no_person"),
    ],
)
def test_a_required_failure_fails_the_request(exc: Exception, status: int, code: str) -> None:
    cancelled = asyncio.Event()

    async def slow() -> Signal:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Signal(value=0)

    extractors = {"need": _fake("need", _raise(exc)), "other": _fake("other", slow)}
    with pytest.raises(MegaCityError) as info:
        _run(extractors, ("need",), ("other",))
    assert (info.value.status, info.value.code) == (status, code)
    assert cancelled.is_set()  # the other extractor was cancelled
    if status == 503:
        assert info.value.headers["Retry-After"]


def test_leaving_cancels_every_running_extractor() -> None:
    cancelled: list[str] = []

    def tracked(name: str) -> Any:
        async def run() -> Signal:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(name)
                raise
            return Signal(value=0)

        return run

    extractors = {
        "fast": _fake("fast", _sleep(0.05)),
        "x": _fake("x", tracked("x")),
        "y": _fake("y", tracked("y")),
    }
    plan = Plan(Scenario.GENERAL, (), ("fast", "x", "y"), False, "anything")

    async def leave_after_first() -> None:
        stream = extract(extractors, plan, _job(), StageDeadlines(), lambda: 60.0, Metrics())
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(leave_after_first())
    assert sorted(cancelled) == ["x", "y"]


# ---- fusion, the JSON stream, checks and the composer -------------------------------


def _features(**signals: Any) -> Features:
    outcomes = [
        Outcome(name, False, _Raw(data)) for name, data in signals.items() if data is not None
    ]
    outcomes += [
        Outcome(name, False, None, reason="timeout")
        for name, data in signals.items()
        if data is None
    ]
    return fuse(
        TutorRequest(text="q", script="저는 매일 아침 커피를 마십니다", locale="ko"),
        "drama_coach",
        "q",
        "저는 매일 아침 커피를 마십니다",
        outcomes,
        tuple(signals),
    )


class _Raw(BaseModel):
    model_config = {"extra": "allow"}

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(**data)


SPEECH = {
    "duration_s": 3.0,
    "words": [{"word": "커피를", "start_s": 1.0}],
    "transcript": "저는 커피를",
}


def test_fusion_is_versioned_with_nulls_and_degraded() -> None:
    features = _features(speech=SPEECH, face=None)
    assert features.version == "1" and features.signals["face"] is None
    assert [(d.engine, d.reason) for d in features.degraded] == [("face", "timeout")]
    assert features.duration_s() == 3.0 and "커피를" in features.words()
    text = prompt_json(features, mask=lambda s: s.replace("커피를", "[MASK]"))
    assert "[MASK]" in text and "sha256" not in text


def test_json_text_stream_finds_the_learner_facing_fields() -> None:
    doc = {
        "summary": '잘했어요 "좋아요"',
        "strengths": ["a", "b"],
        "fixes": [{"time_s": 1, "text": "x\ny"}],
        "next_exercise": "go",
    }
    text = json.dumps(doc, ensure_ascii=False)
    stream, got = JsonTextStream(), defaultdict(str)
    for i in range(0, len(text), 2):
        for delta in stream.feed(text[i : i + 2]):
            got[(delta.field, delta.index)] += delta.text
    assert dict(got) == {
        ("summary", None): '잘했어요 "좋아요"',
        ("strengths", 0): "a",
        ("strengths", 1): "b",
        ("fixes", 0): "x\ny",
        ("next_exercise", None): "go",
    }
    assert JsonTextStream().feed("[not json at all") == []


def test_check_drops_fixes_with_impossible_anchors_and_wrong_languages() -> None:
    features = _features(speech=SPEECH)
    answer = Feedback(
        summary="발음이 좋아요. 두 군데만 고쳐 봐요.",
        fixes=[
            Fix(text="커피를 더 또렷하게", time_s=1.0, word="커피를"),
            Fix(text="꼬리를 흔드세요", part="tail"),
            Fix(text="9초에", time_s=9.0),
            Fix(text="없는 단어", word="바나나"),
            Fix(text="거꾸로", time_s=2.0, end_s=1.0),
        ],
    )
    checked = check(answer, features, "ko")
    assert checked is not None and [f.text for f in checked.fixes] == ["커피를 더 또렷하게"]
    assert check(answer, features, "en") is None  # Korean text for an English learner
    assert check(Feedback(summary="  "), features, None) is None
    assert check(None, features, "ko") is None


def test_parse_json_tolerates_fences_and_prose_but_not_garbage() -> None:
    good = '{"summary": "ok", "strengths": [], "fixes": [], "next_exercise": "x"}'
    assert parse_json(good, Feedback) is not None
    assert parse_json(f"```json\n{good}\n```", Feedback) is not None
    assert parse_json(f"Here you go: {good} Hope it helps", Feedback) is not None
    assert parse_json("[tutor] answer from fast-7b", Feedback) is None
    assert parse_json('{"summary": 3', Feedback) is None


def test_the_deterministic_composer_uses_engine_findings_only() -> None:
    findings = [
        Findings(
            scores={"pronunciation": {"overall": 71.0}},
            summary=(Point("Line accuracy 71/100.", "대사 정확도 71점이에요.", weight=3),),
            fixes=(
                Point("Say X.", "X를 말해요.", Anchor(time_s=1.0, word="커피를"), weight=2),
                Point("Minor.", "사소해요.", weight=0.5),
            ),
            exercises=(Point("Repeat.", "반복해요.", weight=1),),
        ),
        Findings(scores={"smile_share": 0.5}, strengths=(Point("Smiled.", "웃었어요.", weight=1),)),
    ]
    features = _features(speech=SPEECH, face=None)
    ko = deterministic(findings, features, "ko")
    assert ko.summary.startswith("대사 정확도 71점") and "face" in ko.summary
    assert ko.fixes[0] == Fix(text="X를 말해요.", time_s=1.0, word="커피를")
    assert ko.strengths == ["웃었어요."] and ko.next_exercise == "반복해요."
    en = deterministic(findings, features, "ja")  # no Japanese templates: English
    assert en.summary.startswith("Line accuracy")
    assert scores_of(findings) == {"pronunciation": {"overall": 71.0}, "smile_share": 0.5}
    empty = deterministic([], _features(), "en")
    assert empty.summary and empty.next_exercise


def test_the_feature_cache_expires_and_never_keeps_degraded_documents() -> None:
    now = [0.0]
    cache = FeatureCache(2, 10.0, clock=lambda: now[0])
    full, degraded = _features(speech=SPEECH), _features(speech=SPEECH, face=None)
    cache.put("a", full)
    cache.put("b", degraded)
    assert cache.get("a") is full and cache.get("b") is None
    cache.put("b", full)
    cache.put("c", full)
    assert cache.get("a") is None and len(cache) == 2  # least recently used went first
    now[0] = 11.0
    assert cache.get("b") is None


def test_policy_merges_partial_deadlines() -> None:
    policy = MultimodalPolicy.model_validate({"deadlines": {"vision": 5}})
    assert policy.deadlines.vision == 5 and policy.deadlines.pose == 90
    assert policy.deadlines.of("unknown") == policy.deadlines.overall
    with pytest.raises(ValueError):
        MultimodalPolicy.model_validate({"inline_max_video_s": 500, "max_video_s": 100})


def test_another_dance_gets_the_dance_labs_words_and_no_timing_advice() -> None:
    from megacity.pipelines.multimodal.extractors.pose import Dance, PoseExtractor, PoseFeatures

    words = {
        "en": 'This doesn\'t look like "Next Level" yet - start with the first 8 counts.',
        "ko": '아직 "Next Level"처럼 보이지 않아요 - 처음 8카운트부터 시작해 보세요.',
    }
    dance = Dance(
        reference_id="0" * 32,
        score=31.0,
        body_parts={"left_arm": 20.0},
        offset_ms=None,
        tempo_ratio=None,
        timing_reason="another_dance",
        same_choreography=False,
        match_confidence=0.9,
        moves={"perfect": 0, "good": 0, "ok": 1, "miss": 7},
        feedback=[words],
        worst_moments=[],
        timeline=[],
        mirrored=False,
    )
    features = PoseFeatures(frames=80, duration_s=8.0, coverage=1.0, visible={}, dance=dance)
    found = PoseExtractor.findings(PoseExtractor.__new__(PoseExtractor), features)
    assert found.summary[0].en == words["en"] and found.summary[0].ko == words["ko"]
    assert found.scores["timing"] == {"offset_ms": None, "tempo_ratio": None,
                                      "reason": "another_dance"}  # fmt: skip
    assert found.scores["same_choreography"] is False and found.scores["moves"]["miss"] == 7
    said = " ".join(p.en for p in (*found.summary, *found.fixes, *found.exercises))
    assert "ms" not in said and "behind" not in said and "ahead" not in said

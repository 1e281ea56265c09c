"""/v1/audio/transcriptions and the K-Zone voice endpoints through a real router process,
with the in-process faster-whisper engine (random-weight model: structure, not words)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from megacity.testing import RouterProcess
from tests.api.speech_cluster import client, speech_node, start_router
from tests.audio import FORMATS, encode, samples_of, shared_refs, shared_wav, speak, tone_wav

TRANSCRIBE = "/v1/audio/transcriptions"
ANALYZE = "/api/v1/kzone/voice/analyze"
SCORE = "/api/v1/kzone/voice/score"
KO_TEXT = "저는 매일 아침 커피를 마십니다."


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    r = start_router(
        tmp_path_factory.mktemp("speech"),
        [speech_node("speech-local", "local")],
        env={"MEGACITY_SPEECH_MAX_AUDIO_S": "20"},
    )
    yield r
    r.stop()


@pytest.fixture(scope="module")
def http(router: RouterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router.url, timeout=30) as c:
        yield c


def _envelope(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code and error["message"] and error["type"]
    return error


# --- /v1/audio/transcriptions with the official openai client --------------------------


def test_openai_client_json_and_text(router: RouterProcess) -> None:
    c = client(router.url)
    raw = c.audio.transcriptions.with_raw_response.create(
        file=("en1.wav", shared_wav("en1")), model="whisper-1", language="en"
    )
    assert isinstance(raw.parse().text, str)
    assert raw.headers["X-MegaCity-Model"] == "whisper-small"
    assert raw.headers["X-MegaCity-Node"] == "speech-local"
    assert raw.headers["X-MegaCity-Zone"] == "kzone"
    assert float(raw.headers["X-MegaCity-Route-Ms"]) >= 0
    text = c.audio.transcriptions.create(
        file=("en1.wav", shared_wav("en1")), model="whisper-1", response_format="text"
    )
    assert isinstance(text, str) and text.endswith("\n")


def test_openai_client_verbose_json_with_word_and_segment_timings(router: RouterProcess) -> None:
    c = client(router.url)
    duration = samples_of(shared_wav("en2"))[0].size / 16_000
    result = c.audio.transcriptions.create(
        file=("en2.wav", shared_wav("en2")),
        model="whisper-1",
        language="en",
        prompt="A meeting is scheduled.",
        temperature=0,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "english"
    assert result.duration == pytest.approx(duration, abs=0.01)
    assert result.segments and result.words
    for s in result.segments:
        assert 0 <= s.start <= s.end <= result.duration
    for w in result.words:
        assert 0 <= w.start <= w.end <= result.duration
        assert 0 <= w.probability <= 1  # type: ignore[attr-defined]  # beside OpenAI's fields


def test_granularities_choose_words_or_segments(router: RouterProcess) -> None:
    c = client(router.url)
    words_only = c.audio.transcriptions.create(
        file=("en1.wav", shared_wav("en1")),
        model="whisper-1",
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert words_only.words and words_only.segments is None
    segments_only = c.audio.transcriptions.create(
        file=("en1.wav", shared_wav("en1")), model="whisper-1", response_format="verbose_json"
    )
    assert segments_only.segments and segments_only.words is None


def test_srt_and_vtt(router: RouterProcess) -> None:
    c = client(router.url)
    srt = c.audio.transcriptions.create(
        file=("ko1.wav", shared_wav("ko1")), model="whisper-1", response_format="srt"
    )
    vtt = c.audio.transcriptions.create(
        file=("ko1.wav", shared_wav("ko1")), model="whisper-1", response_format="vtt"
    )
    assert isinstance(srt, str) and isinstance(vtt, str)
    first = srt.split("\n")
    assert first[0] == "1"
    assert " --> " in first[1] and first[1][8] == ","  # 00:00:00,000
    assert vtt.startswith("WEBVTT\n\n")
    assert vtt.split("\n")[2][8] == "."  # 00:00:00.000
    assert srt.count(" --> ") == vtt.count(" --> ") >= 1


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_common_format_through_the_router(router: RouterProcess, fmt: str) -> None:
    samples, rate = samples_of(speak("One format after another.", "en"))
    data = encode(samples, rate, fmt)
    c = client(router.url)
    result = c.audio.transcriptions.create(
        file=(f"clip.{fmt}", data, FORMATS[fmt][3]),
        model="whisper-1",
        response_format="verbose_json",
    )
    assert result.duration == pytest.approx(samples.size / rate, abs=0.1)


def test_zone_default_model_and_no_model_field(http: httpx.Client) -> None:
    r = http.post(TRANSCRIBE, files={"file": ("a.wav", shared_wav("en1"))})
    assert r.status_code == 200, r.text
    assert r.headers["X-MegaCity-Model"] == "whisper-small"
    assert set(r.json()) == {"text"}


def test_client_filename_is_only_a_label(http: httpx.Client, tmp_path: Path) -> None:
    evil = "../../../../tmp/megacity-owned.wav"
    r = http.post(
        TRANSCRIBE, files={"file": (evil, shared_wav("en1"))}, data={"model": "whisper-1"}
    )
    assert r.status_code == 200, r.text
    assert not os.path.exists("/tmp/megacity-owned.wav")


# --- request errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_audio"),
        (os.urandom(8192), 415, "unsupported_audio"),
        (b"%PDF-1.4 this is a document, not audio\n" * 40, 415, "unsupported_audio"),
        (b"\x89PNG\r\n\x1a\n" + os.urandom(512), 415, "no_audio_stream"),
        (shared_wav("en1")[:44], 422, "corrupt_audio"),
        (shared_wav("en1")[:1000], 422, "audio_too_short"),
        (tone_wav(21.0), 422, "audio_too_long"),  # the router allows 20 s here
    ],
    ids=["empty", "random", "pdf-text", "png", "header-only", "too-short", "too-long"],
)
@pytest.mark.parametrize("path", [TRANSCRIBE, ANALYZE])
def test_bad_audio_gets_its_own_4xx(
    http: httpx.Client, path: str, data: bytes, status: int, code: str
) -> None:
    fields = {"model": "whisper-1", "reference_text": "Hello there.", "language": "en"}
    r = http.post(path, files={"file": ("upload.bin", data)}, data=fields)
    error = _envelope(r, status, code)
    assert error["param"] == "file"


def test_over_25_mb_is_413_before_reading_it_all(http: httpx.Client) -> None:
    big = b"\0" * (25 * 1024 * 1024 + 1)
    r = http.post(TRANSCRIBE, files={"file": ("big.wav", big)}, data={"model": "whisper-1"})
    _envelope(r, 413, "file_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes are counted as they come
        yield b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(27):
            yield b"\0" * (1024 * 1024)

    r = http.post(
        TRANSCRIBE, content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=xx"}
    )
    _envelope(r, 413, "file_too_large")


@pytest.mark.parametrize(
    ("fields", "headers", "status", "code", "param"),
    [
        ({"model": "no-such-model"}, {}, 404, "model_not_found", "model"),
        ({"model": "chat-7b"}, {}, 400, "wrong_engine", "model"),
        ({"model": "whisper-1"}, {"X-Zone": "plain"}, 403, "model_not_allowed", "model"),
        ({}, {"X-Zone": "plain"}, 400, "no_model_for_zone", "model"),
        ({}, {"X-Zone": "nowhere"}, 400, "unknown_zone", "X-Zone"),
        ({"response_format": "xml"}, {}, 400, "invalid_response_format", "response_format"),
        ({"language": "klingon"}, {}, 400, "unsupported_language", "language"),
        ({"temperature": "7"}, {}, 400, "invalid_request", "temperature"),
        (
            {"timestamp_granularities[]": "sentence", "response_format": "verbose_json"},
            {},
            400,
            "invalid_request",
            "timestamp_granularities",
        ),
    ],
)
def test_bad_fields(
    http: httpx.Client,
    fields: dict[str, str],
    headers: dict[str, str],
    status: int,
    code: str,
    param: str,
) -> None:
    r = http.post(
        TRANSCRIBE, files={"file": ("a.wav", shared_wav("en1"))}, data=fields, headers=headers
    )
    assert _envelope(r, status, code)["param"] == param


def test_missing_file_and_wrong_content_type(http: httpx.Client) -> None:
    r = http.post(TRANSCRIBE, data={"model": "whisper-1"}, files={"other": ("x", b"x")})
    assert _envelope(r, 400, "invalid_request")["param"] == "file"
    _envelope(http.post(TRANSCRIBE, json={"model": "whisper-1"}), 415, "unsupported_media_type")
    r = http.post(
        TRANSCRIBE, content=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=q"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] in {
        "invalid_multipart",
        "invalid_request",
    }


# --- /api/v1/kzone/voice/analyze and /score ------------------------------------------------


def _check_analysis(body: dict[str, Any], reference_words: int, language: str) -> None:
    assert set(body) >= {"transcription", "scores", "words", "cer", "wer", "language", "mode"}
    assert body["language"] == language
    assert set(body["scores"]) == {"accuracy", "completeness", "fluency", "prosody", "overall"}
    for name in ("accuracy", "completeness", "overall"):
        assert 0 <= body["scores"][name] <= 100
    assert body["cer"] >= 0 and body["wer"] >= 0
    refs = [w for w in body["words"] if w["reference"] is not None]
    assert len(refs) == reference_words
    for w in body["words"]:
        assert w["error_type"] in {"none", "mispronunciation", "omission", "insertion"}
        assert 0 <= w["accuracy"] <= 100
        assert isinstance(w["unexpected_break"], bool)
        if w["error_type"] != "omission":
            duration = body["transcription"]["duration"]
            assert 0 <= w["start"] <= w["end"] <= duration
            assert 0 <= w["confidence"] <= 1
        if w["error_type"] == "insertion":
            assert w["reference"] is None and w["recognized"]


@pytest.mark.parametrize("ident", ["ko1", "ko2", "en1"])
def test_analyze_shared_sentences(http: httpx.Client, ident: str) -> None:
    language, text = shared_refs()[ident]
    r = http.post(
        ANALYZE,
        files={"file": (f"{ident}.wav", shared_wav(ident), "audio/wav")},
        data={"reference_text": text, "language": language, "mode": "read"},
        headers={"X-Zone": "kzone"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["X-MegaCity-Node"] == "speech-local"
    body = r.json()
    assert body["transcription"]["language"] == language
    _check_analysis(body, len(text.split()), language)
    if language == "ko":
        first = body["words"][0]
        assert [s["reference"] for s in first["syllables"]] == list(text.split()[0].strip(".,"))


def test_analyze_espeak_korean_in_shadowing_mode_as_ogg(http: httpx.Client) -> None:
    samples, rate = samples_of(speak(KO_TEXT, "ko"))
    r = http.post(
        ANALYZE,
        files={"file": ("attempt.ogg", encode(samples, rate, "ogg"), "audio/ogg")},
        data={"reference_text": KO_TEXT, "language": "ko", "mode": "shadowing"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "shadowing"
    _check_analysis(body, len(KO_TEXT.split()), "ko")


@pytest.mark.parametrize(
    ("fields", "code", "param"),
    [
        ({"language": "ko"}, "invalid_request", "reference_text"),
        ({"reference_text": "안녕"}, "invalid_request", "language"),
        ({"reference_text": "안녕", "language": "fr"}, "unsupported_language", "language"),
        ({"reference_text": "안녕", "language": "ko", "mode": "karaoke"}, "invalid_mode", "mode"),
        ({"reference_text": "...", "language": "en"}, "invalid_reference", "reference_text"),
    ],
)
def test_analyze_bad_fields(
    http: httpx.Client, fields: dict[str, str], code: str, param: str
) -> None:
    r = http.post(ANALYZE, files={"file": ("a.wav", shared_wav("ko1"))}, data=fields)
    assert _envelope(r, 400, code)["param"] == param


def test_score_exact_transcript_without_timings(http: httpx.Client) -> None:
    r = http.post(SCORE, json={"reference_text": KO_TEXT, "language": "ko", "transcript": KO_TEXT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scores"] == {
        "accuracy": 100.0,
        "completeness": 100.0,
        "fluency": None,
        "prosody": None,
        "overall": 100.0,
    }
    assert body["cer"] == 0 and body["wer"] == 0
    assert body["transcription"] == {"text": KO_TEXT, "language": "ko"}
    assert all(w["error_type"] == "none" for w in body["words"])


def test_score_with_word_timings_has_fluency_and_jamo_detail(http: httpx.Client) -> None:
    heard = ["저는", "매일", "아침", "커피를", "마심니다"]
    words = [
        {"word": f" {w}", "start": 0.2 + 0.5 * i, "end": 0.6 + 0.5 * i, "probability": 0.9}
        for i, w in enumerate(heard)
    ]
    r = http.post(
        SCORE,
        json={
            "reference_text": KO_TEXT,
            "language": "ko",
            "mode": "read",
            "transcript": " ".join(heard),
            "words": words,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scores"]["fluency"] is not None
    last = body["words"][-1]
    assert last["error_type"] == "mispronunciation"
    assert last["start"] == pytest.approx(2.2) and last["confidence"] == pytest.approx(0.9)
    wrong = [s for s in last["syllables"] if s["error_type"] != "none"]
    assert wrong and wrong[0]["differences"]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"language": "ko", "transcript": "x"}, 400, "invalid_request", "reference_text"),
        (
            {"reference_text": "a", "language": "fr", "transcript": "a"},
            400,
            "invalid_request",
            "language",
        ),
        (
            {"reference_text": "a", "language": "en", "transcript": "a", "mode": "rap"},
            400,
            "invalid_request",
            "mode",
        ),
        (
            {"reference_text": "a", "language": "en", "transcript": "a", "extra": 1},
            400,
            "invalid_request",
            "extra",
        ),
        (
            {
                "reference_text": "a",
                "language": "en",
                "transcript": "a",
                "words": [{"word": "a", "start": 2, "end": 1}],
            },
            400,
            "invalid_request",
            "words.0.end",
        ),
        (
            {
                "reference_text": "a",
                "language": "en",
                "transcript": "a",
                "words": [{"word": "a", "start": 0, "end": 1, "probability": 2}],
            },
            400,
            "invalid_request",
            "words.0.probability",
        ),
        (
            {"reference_text": "!!!", "language": "en", "transcript": "a"},
            400,
            "invalid_reference",
            "reference_text",
        ),
    ],
)
def test_score_bad_input(
    http: httpx.Client, body: dict[str, Any], status: int, code: str, param: str
) -> None:
    assert _envelope(http.post(SCORE, json=body), status, code)["param"] == param


def test_metrics_and_readiness_show_the_speech_engine(http: httpx.Client) -> None:
    metrics = http.get("/metrics").text
    assert 'engine="speech"' in metrics and 'node="speech-local"' in metrics
    ready = http.get("/readyz").json()
    assert ready["engines"]["speech"]["ready"] is True


# --- a model that cannot be loaded -------------------------------------------------------------


def test_unloadable_model_starts_fast_then_503_naming_the_setting(tmp_path: Path) -> None:
    started = time.monotonic()
    router = start_router(
        tmp_path, [speech_node("speech-local", "local")], env={"MEGACITY_SPEECH_MODEL": "small"}
    )
    try:
        # The model loads on first use, so start-up never waits on a hub that cannot be
        # reached (minutes of retries); the bound is generous for a busy machine.
        assert time.monotonic() - started < 30
        with httpx.Client(base_url=router.url, timeout=30) as h:
            r = h.post(TRANSCRIBE, files={"file": ("a.wav", shared_wav("en1"))})
            error = _envelope(r, 503, "model_unavailable")
            assert "'small'" in error["message"] and "MEGACITY_SPEECH_MODEL" in error["message"]
            assert r.headers["Retry-After"]
            speech = h.get("/readyz").json()["engines"]["speech"]
            assert speech["ready"] is False
            assert "MEGACITY_SPEECH_MODEL" in speech["nodes"]["speech-local"]["reason"]
            c = client(router.url)
            with pytest.raises(openai.InternalServerError):
                c.audio.transcriptions.create(file=("a.wav", shared_wav("en1")), model="whisper-1")
    finally:
        router.stop()

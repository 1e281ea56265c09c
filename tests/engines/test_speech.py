"""The in-process speech engine with the real faster-whisper loading code (random-weight model).

Random weights make the words gibberish: these tests check structure, timings, limits,
loading and concurrency, never what was recognised.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from megacity.engines.audio import decode_audio
from megacity.engines.speech import (
    ModelUnavailable,
    SpeechEngine,
    SpeechEngineConfig,
    TranscribeOptions,
    Transcript,
)
from tests.audio import FAST_DECODING, WHISPER_MODEL, shared_wav, speak


@pytest.fixture(scope="module")
def engine() -> Iterator[SpeechEngine]:
    e = SpeechEngine(SpeechEngineConfig.from_options({"model": WHISPER_MODEL, **FAST_DECODING}))
    yield e
    e.close()


def _run(engine: SpeechEngine, name: str, **options: object) -> Transcript:
    audio = decode_audio(shared_wav(name), max_seconds=600)
    return asyncio.run(engine.transcribe(audio, TranscribeOptions(**options)))  # type: ignore[arg-type]


def test_model_is_loaded_once_lazily(engine: SpeechEngine) -> None:
    fresh = SpeechEngine(SpeechEngineConfig(model=WHISPER_MODEL, device="cpu"))
    assert not fresh.loaded
    model = fresh.load()
    assert fresh.loaded and fresh.load() is model
    assert fresh.load_seconds is not None and fresh.load_seconds < 10
    fresh.close()


@pytest.mark.parametrize(("name", "language"), [("en1", "en"), ("ko1", "ko")])
def test_transcript_structure_and_word_timings(
    engine: SpeechEngine, name: str, language: str
) -> None:
    t = _run(engine, name, language=language, word_timestamps=True)
    duration = decode_audio(shared_wav(name), max_seconds=600).size / 16_000
    assert t.language == language
    assert t.duration == pytest.approx(duration, abs=0.01)
    assert t.segments and t.text == "".join(s.text for s in t.segments).strip()
    for s in t.segments:
        assert 0 <= s.start <= s.end <= t.duration
        assert s.tokens
    assert t.words
    for w in t.words:
        assert 0 <= w.start <= w.end <= t.duration
        assert 0 <= w.probability <= 1
    starts = [w.start for w in t.words]
    assert starts == sorted(starts)


def test_words_only_when_asked_and_language_detected_otherwise(engine: SpeechEngine) -> None:
    t = _run(engine, "en2")
    assert t.words == ()
    assert t.language in {"en", "ko", "ja", "zh"}  # the random model's lang_ids


def test_verbose_json_round_trip(engine: SpeechEngine) -> None:
    t = _run(engine, "en3", language="en", word_timestamps=True)
    body = t.to_verbose_json()
    assert body["language"] == "english"
    assert {"id", "start", "end", "text", "tokens", "avg_logprob", "no_speech_prob"} <= set(
        body["segments"][0]
    )
    assert set(body["words"][0]) == {"word", "start", "end", "probability"}
    back = Transcript.from_verbose_json(body)
    assert back.words == t.words
    assert (back.text, back.language, back.duration) == (t.text, t.language, t.duration)


def test_vad_option_runs_silero(engine: SpeechEngine) -> None:
    vad = SpeechEngine(
        SpeechEngineConfig.from_options({"model": WHISPER_MODEL, **FAST_DECODING, "vad": True})
    )
    try:
        audio = decode_audio(speak("Silence is skipped before decoding.", "en"), max_seconds=60)
        t = asyncio.run(vad.transcribe(audio, TranscribeOptions(language="en")))
        assert t.duration > 1 and all(0 <= s.start <= s.end <= t.duration for s in t.segments)
    finally:
        vad.close()


def test_concurrency_is_bounded_by_workers(engine: SpeechEngine) -> None:
    audio = decode_audio(shared_wav("en1"), max_seconds=600)
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, engine.running)

    async def many() -> list[Transcript]:
        return await asyncio.gather(
            *(engine.transcribe(audio, TranscribeOptions(language="en")) for _ in range(4))
        )

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = asyncio.run(many())
    finally:
        stop.set()
        watcher.join()
    assert len(results) == 4
    assert peak == 1  # workers=1: one at a time, the others wait in line
    assert (engine.running, engine.waiting) == (0, 0)


def test_a_model_that_cannot_load_names_itself_and_the_setting() -> None:
    bad = SpeechEngine(SpeechEngineConfig(model="/nonexistent/whisper-model", device="cpu"))
    audio = decode_audio(shared_wav("en1"), max_seconds=600)
    with pytest.raises(ModelUnavailable) as info:
        asyncio.run(bad.transcribe(audio, TranscribeOptions()))
    err = info.value
    assert (err.status, err.code) == (503, "model_unavailable")
    assert "/nonexistent/whisper-model" in err.message and "MEGACITY_SPEECH_MODEL" in err.message
    assert bad.failure is not None and not bad.loaded
    with pytest.raises(ModelUnavailable):  # remembered: not retried on every request
        bad.load()
    bad.close()


@pytest.mark.parametrize(
    "options",
    [{"unknown": 1}, {"device": "tpu"}, {"workers": 0}, {"beam_size": "5"}, {"model": ""}],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="speech engine"):
        SpeechEngineConfig.from_options(options)


def test_compute_type_follows_the_device() -> None:
    config = SpeechEngineConfig()
    assert config.resolved_compute_type("cuda") == "float16"
    assert config.resolved_compute_type("cpu") == "int8"
    assert SpeechEngineConfig(compute_type="int8_float16").resolved_compute_type("cuda") == (
        "int8_float16"
    )

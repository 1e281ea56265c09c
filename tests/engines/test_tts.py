"""The in-process TTS engine: a tiny random-weight VITS loaded with the real from_pretrained,
and the real espeak-ng.

Random weights make the speech noise: these tests check loading, structure, lengths,
determinism, fallbacks, limits and concurrency, never how it sounds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from megacity.engines.errors import ModelUnavailable
from megacity.engines.tts import (
    STYLES,
    SpeechSynthesis,
    TTSEngine,
    TTSEngineConfig,
    clean_text,
    split_sentences,
)
from megacity.engines.tts_espeak import STYLE_PRESETS, find_espeak
from megacity.engines.tts_vits import PROSODY_PRESETS
from megacity.errors import MegaCityError
from tests.tts_models import SAMPLE_RATE, build_tiny_vits

needs_espeak = pytest.mark.skipif(find_espeak() is None, reason="espeak-ng is not installed")
KOREAN = "안녕하세요. 오늘은 날씨가 좋네요."
ENGLISH = "Hello there. The weather is nice today."


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("tts")
    return {
        "eng": build_tiny_vits(root / "eng"),
        "kor": build_tiny_vits(root / "kor", uroman=True),
    }


@pytest.fixture(scope="module")
def eng(folders: dict[str, Path]) -> Iterator[TTSEngine]:
    engine = TTSEngine(TTSEngineConfig(model=str(folders["eng"]), device="cpu", fallback=None))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def kor(folders: dict[str, Path]) -> Iterator[TTSEngine]:
    engine = TTSEngine(TTSEngineConfig(model=str(folders["kor"]), device="cpu", fallback=None))
    yield engine
    engine.close()


def _say(engine: TTSEngine, text: str, **options: Any) -> SpeechSynthesis:
    return asyncio.run(engine.synthesize(text, **options))


def _seconds(made: SpeechSynthesis) -> float:
    return made.samples.size / made.sample_rate


def _code(engine: TTSEngine, text: str, **options: Any) -> tuple[int, str]:
    with pytest.raises(MegaCityError) as caught:
        _say(engine, text, **options)
    return caught.value.status, caught.value.code


def _assert_audio(made: SpeechSynthesis) -> None:
    assert made.samples.dtype == np.float32 and made.samples.ndim == 1
    assert made.samples.size > made.sample_rate // 10
    assert np.isfinite(made.samples).all() and np.abs(made.samples).max() <= 1.0
    assert np.abs(made.samples).max() > 0.01  # not silence


def test_config_from_options_validates() -> None:
    config = TTSEngineConfig.from_options({"model": "espeak-ng", "max_concurrency": 2})
    assert (config.model, config.max_concurrency, config.fallback) == ("espeak-ng", 2, "espeak-ng")
    for bad in (
        {"modle": "x"},
        {"device": "tpu"},
        {"fallback": "festival"},
        {"max_chars": 0},
        {"max_concurrency": True},
        {"model": ""},
        {"warmup": "yes"},
    ):
        with pytest.raises(ValueError, match="tts engine"):
            TTSEngineConfig.from_options(bad)
    assert set(STYLES) == set(PROSODY_PRESETS) == set(STYLE_PRESETS)


def test_text_is_cleaned_and_chunked_by_sentence() -> None:
    assert clean_text("  a\x00b\u200b\tc \r\n\n d\x1b  ") == "ab c\nd"
    assert split_sentences("One. Two! Three?\nFour", max_chars=9) == ["One. Two!", "Three?", "Four"]
    long = " ".join(["word"] * 100) + ". " + "다음 문장입니다."
    chunks = split_sentences(long, max_chars=60)
    assert all(len(c) <= 60 for c in chunks) and len(chunks) >= 8
    assert " ".join(chunks).split() == long.split()


def test_vits_loads_lazily_once_and_speaks_english(
    eng: TTSEngine, folders: dict[str, Path]
) -> None:
    made = _say(eng, ENGLISH, voice="en")
    assert eng.loaded and eng.load() is eng.load()
    assert eng.load_seconds is not None and eng.failure is None
    _assert_audio(made)
    assert (made.sample_rate, made.engine, made.voice, made.style) == (
        SAMPLE_RATE,
        "vits",
        "en",
        "neutral",
    )
    assert made.model == str(folders["eng"])


def test_korean_is_romanised_for_an_uroman_model(kor: TTSEngine, eng: TTSEngine) -> None:
    made = _say(kor, KOREAN)
    _assert_audio(made)
    assert made.voice == "ko" and _seconds(made) > 1.0  # every syllable spoken, not dropped
    # A model without romanisation has no letters for Hangul: a clear 422, not silence.
    assert _code(eng, "안녕하세요") == (422, "unsupported_text")


def test_seed_makes_output_deterministic(eng: TTSEngine) -> None:
    first, again = (_say(eng, ENGLISH, seed=7).samples for _ in range(2))
    assert np.array_equal(first, again)
    other = _say(eng, ENGLISH, seed=8).samples
    unseeded = [_say(eng, ENGLISH).samples for _ in range(2)]
    assert not np.array_equal(first, other) or first.size != other.size
    # a seed must not freeze the global generator for the requests after it
    assert not np.array_equal(unseeded[0], unseeded[1])


def test_speed_and_style_change_duration(eng: TTSEngine) -> None:
    normal = _seconds(_say(eng, ENGLISH, seed=1))
    fast = _seconds(_say(eng, ENGLISH, seed=1, speed=2.0))
    assert fast == pytest.approx(normal / 2, rel=0.15)
    sad = _seconds(_say(eng, ENGLISH, seed=1, style="sad"))
    excited = _seconds(_say(eng, ENGLISH, seed=1, style="excited"))
    assert excited < normal < sad


def test_long_text_is_spoken_in_chunks(eng: TTSEngine) -> None:
    sentence = "this sentence is spoken again and again. "
    one = _seconds(_say(eng, sentence, seed=3))
    made = _say(eng, sentence * 12, seed=3)  # ~500 characters: three chunks
    _assert_audio(made)
    assert _seconds(made) == pytest.approx(12 * one + 2 * 0.2, rel=0.1)


@needs_espeak
def test_missing_model_falls_back_to_espeak(tmp_path: Path) -> None:
    engine = TTSEngine(TTSEngineConfig(model=str(tmp_path / "nothing-here")))
    made = _say(engine, KOREAN, style="calm")
    _assert_audio(made)
    assert (made.engine, made.model, made.sample_rate) == ("espeak-ng", "espeak-ng", 22_050)
    assert engine.failure is None and engine.degraded
    engine.close()


def test_missing_model_without_fallback_is_unavailable(tmp_path: Path) -> None:
    engine = TTSEngine(TTSEngineConfig(model=str(tmp_path / "nothing-here"), fallback=None))
    with pytest.raises(ModelUnavailable) as caught:
        _say(engine, "hello")
    assert caught.value.status == 503 and "options.model" in caught.value.message
    assert engine.failure and not engine.loaded
    engine.close()


@needs_espeak
@pytest.mark.parametrize(("voice", "text"), [("ko", KOREAN), ("en", ENGLISH), ("en-us+f3", "Hi.")])
def test_espeak_model_speaks_languages_and_voices(voice: str, text: str) -> None:
    engine = TTSEngine(TTSEngineConfig(model="espeak-ng"))
    made = _say(engine, text, voice=voice)
    _assert_audio(made)
    assert (made.engine, made.voice) == ("espeak-ng", voice)
    fast = _say(engine, text, voice=voice, speed=2.0)
    assert _seconds(fast) < _seconds(made)
    engine.close()


@needs_espeak
def test_bad_input_gets_4xx() -> None:
    engine = TTSEngine(TTSEngineConfig(model="espeak-ng", max_chars=50))
    assert _code(engine, " \x00\n\t ") == (400, "empty_input")
    assert _code(engine, "a" * 51) == (422, "input_too_long")
    assert _code(engine, "hi", style="angry") == (400, "unknown_style")
    assert _code(engine, "hi", speed=0.1) == (400, "invalid_speed")
    assert _code(engine, "hi", speed=4.5) == (400, "invalid_speed")
    assert _code(engine, "hi", voice="klingon") == (400, "unknown_voice")
    assert _code(engine, "hi", voice="ko -x") == (400, "unknown_voice")
    engine.close()


def test_vits_rejects_unknown_voice(eng: TTSEngine) -> None:
    assert _code(eng, "hi", voice="klingon") == (400, "unknown_voice")


@needs_espeak
def test_concurrency_is_bounded() -> None:
    engine = TTSEngine(TTSEngineConfig(model="espeak-ng", max_concurrency=2))
    seen: list[int] = []
    lock = threading.Lock()
    real = engine._synthesize

    def spy(*args: Any) -> SpeechSynthesis:
        with lock:
            seen.append(engine.running)
        return real(*args)

    engine._synthesize = spy  # type: ignore[method-assign,assignment]

    async def many() -> list[SpeechSynthesis]:
        return await asyncio.gather(*(engine.synthesize(ENGLISH, voice="en") for _ in range(6)))

    assert len(asyncio.run(many())) == 6
    assert len(seen) == 6 and max(seen) <= 2 and max(seen) >= 1
    assert engine.running == 0 and engine.waiting == 0
    engine.close()


def test_no_model_and_no_espeak_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("megacity.engines.tts.find_espeak", lambda: None)
    engine = TTSEngine(TTSEngineConfig(model=str(tmp_path / "nothing-here")))
    with pytest.raises(ModelUnavailable, match="fallback: FileNotFoundError: espeak-ng is not"):
        _say(engine, "hello")
    engine.close()

"""Real recognition end to end: ../shared/models/whisper-base-ct2 (real multilingual Whisper
weights) in a router process, scoring real human speech (LibriVox) and espeak-ng Korean
through /api/v1/kzone/voice/analyze. Each clip is transcribed once (1-6 s on this CPU),
all through one router and one loaded model."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from megacity.testing import RouterProcess
from tests.api.speech_cluster import speech_node, start_router
from tests.audio import AUDIO_DIR, SHARED, shared_refs, shared_wav

REAL_MODEL = (SHARED / "models" / "whisper-base-ct2").resolve()
LIBRIVOX = AUDIO_DIR / "librivox"
ANALYZE = "/api/v1/kzone/voice/analyze"


def _librivox() -> dict[str, str]:
    refs = {}
    for row in (LIBRIVOX / "refs.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        ident, _, text = row.split("\t")
        refs[ident[-4:]] = text
    return refs


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    if not (REAL_MODEL / "model.bin").is_file():
        message = f"the real Whisper model is missing: {REAL_MODEL}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    options = {"model": str(REAL_MODEL), "max_new_tokens": None, "cpu_threads": 2}
    r = start_router(
        tmp_path_factory.mktemp("real-speech"),
        [speech_node("speech-local", "local", options=options)],
        env={
            "MEGACITY_SPEECH_TIMEOUT_S": "120",
            "MEGACITY_DATA_DIR": str(tmp_path_factory.mktemp("d")),
        },
    )
    yield r
    r.stop()


@pytest.fixture(scope="module")
def http(router: RouterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router.url, timeout=180) as c:
        yield c


@cache
def _clip(ident: str) -> bytes:
    return next(LIBRIVOX.glob(f"*-{ident}.wav")).read_bytes()


def _analyze(http: httpx.Client, audio: bytes, text: str, language: str = "en") -> dict[str, Any]:
    r = http.post(
        ANALYZE,
        files={"file": ("clip.wav", audio, "audio/wav")},
        data={"reference_text": text, "language": language},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _flagged(body: dict[str, Any]) -> list[str]:
    return [w["reference"] for w in body["words"] if w["error_type"] != "none" and w["reference"]]


def _differs(reference: str, heard: str) -> set[str]:
    """Reference words that Whisper's own text does not have at their place (raw words)."""
    ref = reference.split()
    hyp = re.findall(r"[a-z']+", heard.lower().replace("-", " "))
    same = difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_matching_blocks()
    kept = {i for block in same for i in range(block.a, block.a + block.size)}
    return {w for i, w in enumerate(ref) if i not in kept}


@pytest.mark.parametrize("ident", ["0870", "0920"])
def test_a_clip_against_its_own_transcript_flags_only_what_was_heard_differently(
    http: httpx.Client, ident: str
) -> None:
    text = _librivox()[ident]
    body = _analyze(http, _clip(ident), text)
    heard = body["transcription"]["text"]
    assert body["scores"]["accuracy"] >= 95 and body["scores"]["overall"] >= 90, body["scores"]
    assert set(_flagged(body)) <= _differs(text, heard), (heard, _flagged(body))
    if ident == "0870":  # Whisper writes "Mr." for the "mister" the reference spells out
        assert "Mr." in heard and _flagged(body) == []


def test_two_replaced_words_are_exactly_the_words_flagged(http: httpx.Client) -> None:
    text = _librivox()["0880"].split()  # he was not an ill disposed young man
    changed = {2: "never", 6: "clever"}
    for index, word in changed.items():
        text[index] = word
    body = _analyze(http, _clip("0880"), " ".join(text))
    assert sorted(_flagged(body)) == sorted(changed.values()), body["words"]
    assert 60 <= body["scores"]["accuracy"] < 95


def test_another_sentence_scores_low(http: httpx.Client) -> None:
    body = _analyze(http, _clip("0880"), "the weather in seoul was cold and windy yesterday")
    assert body["scores"]["accuracy"] < 35 and body["scores"]["overall"] < 35


def test_robotic_korean_names_the_misheard_words_with_jamo_detail(http: httpx.Client) -> None:
    language, text = shared_refs()["ko2"]
    body = _analyze(http, shared_wav("ko2"), text, language)
    misheard = [w for w in body["words"] if w["error_type"] == "mispronunciation"]
    assert misheard, body["words"]
    detail = [s for w in misheard for s in w["syllables"] if s["differences"]]
    assert detail, misheard  # which 초성/중성/종성 differed
    assert all(w["reference"] in text for w in misheard)
    assert 0 < body["scores"]["accuracy"] < 95
    assert Path(REAL_MODEL).is_dir()

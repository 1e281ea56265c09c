"""Voice references and prosody through a real router process: sing-along and shadowing
attempts against stored references (random-weight Whisper: the words are gibberish, the
pitch, rhythm and intonation are real), and every refusal with its 4xx code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from megacity.testing import RouterProcess, wav_bytes
from tests.api.speech_cluster import speech_node, start_router
from tests.audio import sing, speak, tone_wav

REFS = "/api/v1/kzone/voice/references"
ANALYZE = "/api/v1/kzone/voice/analyze"
LYRICS = "도 레 미 파\n솔 파 미 레\n미 미 파 솔\n라 솔 파 미"
LINE = "You are coming home tonight."


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("voice-data")


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[RouterProcess]:
    r = start_router(
        tmp_path_factory.mktemp("voice"),
        [speech_node("speech-local", "local")],
        env={"MEGACITY_SPEECH_MAX_AUDIO_S": "30", "MEGACITY_DATA_DIR": str(data_dir)},
    )
    yield r
    r.stop()


@pytest.fixture(scope="module")
def http(router: RouterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router.url, timeout=60) as c:
        yield c


def _add(
    http: httpx.Client, audio: bytes, text: str, mode: str, language: str, **extra: str
) -> httpx.Response:
    data = {"text": text, "mode": mode, "language": language, **extra}
    return http.post(REFS, files={"file": ("ref.wav", audio, "audio/wav")}, data=data)


def _analyze(http: httpx.Client, audio: bytes, **data: str) -> httpx.Response:
    return http.post(ANALYZE, files={"file": ("try.wav", audio, "audio/wav")}, data=data)


def _error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


@pytest.fixture(scope="module")
def song(http: httpx.Client) -> dict[str, Any]:
    r = _add(http, wav_bytes(sing()), LYRICS, "singalong", "ko", title="도레미 연습")
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def line(http: httpx.Client) -> dict[str, Any]:
    r = http.post(
        REFS,
        files={"file": ("line.wav", speak(LINE, "en", 150, 50), "audio/wav")},
        data={"text": LINE, "mode": "shadowing", "language": "en"},
        headers={"X-User-Id": "teacher-1"},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_reference_stores_its_contour_and_reads_back(
    http: httpx.Client, song: dict[str, Any], data_dir: Path
) -> None:
    assert (
        song["mode"] == "singalong" and song["language"] == "ko" and song["title"] == "도레미 연습"
    )
    assert song["text"] == LYRICS and song["voiced_s"] > 4 and 200 < song["median_f0_hz"] < 450
    assert song["duration_s"] == pytest.approx(0.3 + 4 * (4 * 0.35 + 0.4), abs=0.1)
    assert http.get(f"{REFS}/{song['id']}").json() == song
    listed = http.get(REFS, params={"limit": 10}).json()["data"]
    assert song["id"] in [r["id"] for r in listed]
    stored = data_dir / "objects" / "kzone" / "voice" / "references" / song["id"] / "contour.npz"
    assert stored.is_file() and stored.stat().st_size < 200_000  # the contour, not the audio


def test_singing_the_song_scores_its_pitch_rhythm_and_phrases(
    http: httpx.Client, song: dict[str, Any]
) -> None:
    same = _analyze(http, wav_bytes(sing(start_s=0.7)), reference_id=song["id"])
    assert same.status_code == 200, same.text
    body = same.json()
    assert body["reference_id"] == song["id"] and body["mode"] == "singalong"
    assert body["language"] == "ko"  # taken from the reference
    prosody = body["prosody"]
    assert prosody["mode"] == "singalong" and prosody["score"] >= 95
    assert body["scores"]["prosody"] == pytest.approx(prosody["score"], abs=0.1)
    assert prosody["pitch"]["within_50_cents"] >= 0.95 and len(prosody["phrases"]) == 4
    sharp = _analyze(http, wav_bytes(sing(200)), reference_id=song["id"]).json()
    assert sharp["prosody"]["pitch"]["median_error_cents"] == pytest.approx(200, abs=10)
    assert sharp["scores"]["prosody"] < same.json()["scores"]["prosody"] - 30
    octave = wav_bytes(sing(1200))
    forgiven = _analyze(http, octave, reference_id=song["id"]).json()
    strict = _analyze(http, octave, reference_id=song["id"], forgive_octave="false").json()
    assert forgiven["prosody"]["pitch"]["score"] >= 90 and strict["prosody"]["pitch"]["score"] <= 10
    wrong = _analyze(http, wav_bytes(sing(wrong_note=(1, 2))), reference_id=song["id"]).json()
    assert wrong["prosody"]["worst_phrases"] == [1]
    named = [f for f in wrong["prosody"]["feedback"] if f["phrase"] == 1]
    assert named and named[0]["en"].startswith("Phrase 2") and "2번째 소절" in named[0]["ko"]


def test_shadowing_scores_intonation_and_names_the_end(
    http: httpx.Client, line: dict[str, Any]
) -> None:
    same = _analyze(http, speak(LINE, "en", 130, 30), reference_id=line["id"]).json()
    assert same["prosody"]["mode"] == "shadowing"
    assert same["prosody"]["intonation"]["score"] >= 90
    question = _analyze(http, speak(LINE[:-1] + "?", "en", 130, 30), reference_id=line["id"]).json()
    assert question["prosody"]["intonation"]["score"] <= 50
    assert question["scores"]["prosody"] < same["scores"]["prosody"] - 20
    end = question["prosody"]["feedback"][0]
    assert end["en"] == "Your voice rises at the end of the line where the actor's falls."
    assert "문장 끝에서" in end["ko"]


@pytest.mark.parametrize(
    ("audio", "status", "code"),
    [
        (wav_bytes(np.zeros(32_000, dtype=np.float32)), 422, "no_voiced_frames"),
        (
            wav_bytes(np.random.default_rng(0).normal(0, 0.2, 32_000).astype(np.float32)),
            422,
            "no_voiced_frames",
        ),
        (b"", 400, "empty_audio"),
        (b"not audio at all" * 20, 415, "unsupported_audio"),
    ],
    ids=["silence", "noise", "empty", "text"],
)
def test_a_reference_without_voice_is_refused(
    http: httpx.Client, audio: bytes, status: int, code: str
) -> None:
    before = len(http.get(REFS).json()["data"])
    _error(_add(http, audio, "la la la", "singalong", "en"), status, code)
    assert len(http.get(REFS).json()["data"]) == before  # nothing half-written


def test_bad_reference_forms_are_refused(http: httpx.Client) -> None:
    audio = tone_wav(1.0)
    _error(_add(http, audio, "la la", "read", "en"), 400, "invalid_mode")
    _error(_add(http, audio, "la la", "singalong", "xx"), 400, "unsupported_language")
    _error(_add(http, audio, "  ...  ", "singalong", "en"), 400, "invalid_reference")
    _error(_add(http, audio, "la", "singalong", "en", title="x" * 300), 400, "invalid_title")
    r = http.post(REFS, files={"file": ("a.wav", audio, "audio/wav")}, data={"mode": "singalong"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "text"
    _error(http.get(f"{REFS}/{'0' * 32}"), 404, "reference_not_found")
    _error(http.get(f"{REFS}/not-an-id"), 404, "reference_not_found")


def test_bad_attempts_against_a_reference_are_refused(
    http: httpx.Client, song: dict[str, Any], line: dict[str, Any]
) -> None:
    silence = wav_bytes(np.zeros(32_000, dtype=np.float32))
    _error(_analyze(http, silence, reference_id=song["id"]), 422, "no_voiced_frames")
    audio = wav_bytes(sing())
    _error(
        _analyze(http, audio, reference_id=song["id"], language="en"),
        400,
        "reference_language_mismatch",
    )
    _error(
        _analyze(http, audio, reference_id=song["id"], mode="shadowing"),
        400,
        "reference_mode_mismatch",
    )
    _error(
        _analyze(http, audio, reference_id=line["id"], reference_text="Another line."),
        400,
        "reference_text_mismatch",
    )
    _error(_analyze(http, audio, reference_id="f" * 32), 404, "reference_not_found")
    _error(
        _analyze(http, audio, reference_id=song["id"], forgive_octave="maybe"),
        400,
        "invalid_request",
    )


def test_only_the_owner_deletes_and_the_contour_goes_with_it(
    http: httpx.Client, line: dict[str, Any], data_dir: Path
) -> None:
    rid = line["id"]
    _error(http.delete(f"{REFS}/{rid}", headers={"X-User-Id": "student-9"}), 403, "not_owner")
    assert http.delete(f"{REFS}/{rid}", headers={"X-User-Id": "teacher-1"}).status_code == 204
    _error(http.get(f"{REFS}/{rid}"), 404, "reference_not_found")
    assert not (data_dir / "objects" / "kzone" / "voice" / "references" / rid).exists()


def test_openapi_lists_the_voice_reference_endpoints(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert {REFS, f"{REFS}/{{reference_id}}"} <= set(paths)

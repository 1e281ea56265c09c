"""Transcription formats (srt, vtt, verbose_json) and the in-memory multipart parser."""

from __future__ import annotations

import pytest

from megacity.api.multipart import parse_form
from megacity.api.transcription import parse_transcription, to_srt, to_vtt
from megacity.engines.speech import Segment, Transcript, Word
from megacity.errors import BadRequest

T = Transcript(
    text="Hello there. General Kenobi.",
    language="en",
    duration=3725.5,
    segments=(
        Segment(0, 0.0, 1.5, " Hello there.", (Word(" Hello", 0.0, 0.6, 0.9),)),
        Segment(1, 3723.25, 3725.5, " General Kenobi."),
    ),
)


def test_srt() -> None:
    assert to_srt(T) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
        "2\n01:02:03,250 --> 01:02:05,500\nGeneral Kenobi.\n"
    )


def test_vtt() -> None:
    assert to_vtt(T) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n"
        "01:02:03.250 --> 01:02:05.500\nGeneral Kenobi.\n"
    )


def test_verbose_json_shape() -> None:
    body = T.to_verbose_json()
    assert body["language"] == "english" and body["duration"] == 3725.5
    assert body["words"] == [{"word": " Hello", "start": 0.0, "end": 0.6, "probability": 0.9}]
    assert [s["id"] for s in body["segments"]] == [0, 1]
    assert "words" not in T.to_verbose_json(words=False)


def _multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + b"--b--\r\n"


def test_parse_form_fields_files_and_repeats() -> None:
    body = _multipart(
        ("file", "../../etc/passwd", b"RIFF\0\0binary\r\n--not-a-boundary"),
        ("model", None, b"whisper-1"),
        ("response_format", None, b"verbose_json"),
        ("timestamp_granularities[]", None, b"word"),
        ("timestamp_granularities[]", None, b"segment"),
        ("language", None, b"KO"),
    )
    form = parse_form(body, b"b")
    assert form.files["file"].data == b"RIFF\0\0binary\r\n--not-a-boundary"
    req = parse_transcription(form)
    assert req.model == "whisper-1"
    assert req.granularities == {"word", "segment"}
    assert req.options.language == "ko" and req.options.word_timestamps
    assert req.upload.filename == "passwd"  # a label only, never a path


def test_word_timings_only_for_verbose_json_with_word() -> None:
    form = parse_form(
        _multipart(("file", "a.wav", b"x"), ("timestamp_granularities[]", None, b"word")), b"b"
    )
    assert not parse_transcription(form).options.word_timestamps


@pytest.mark.parametrize(
    "body",
    [
        b"no boundary at all",
        b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",  # no Content-Disposition
    ],
)
def test_malformed_multipart(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_form(body, b"b")

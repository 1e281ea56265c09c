"""OpenAI's transcription request and response formats, shared by the router and speech nodes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from megacity.api.multipart import Form, UploadedFile, read_form
from megacity.engines.upload import MediaUpload as AudioUpload
from megacity.errors import BadRequest, PayloadTooLarge

if TYPE_CHECKING:  # the speech engine (PyAV, numpy) loads with the first speech request
    from megacity.engines.speech import TranscribeOptions, Transcript

ResponseFormat = Literal["json", "text", "verbose_json", "srt", "vtt"]
RESPONSE_FORMATS: tuple[str, ...] = ("json", "text", "verbose_json", "srt", "vtt")
GRANULARITIES = ("word", "segment")
LANGUAGES = frozenset(
    [
        "af",
        "am",
        "ar",
        "as",
        "az",
        "ba",
        "be",
        "bg",
        "bn",
        "bo",
        "br",
        "bs",
        "ca",
        "cs",
        "cy",
        "da",
        "de",
        "el",
        "en",
        "es",
        "et",
        "eu",
        "fa",
        "fi",
        "fo",
        "fr",
        "gl",
        "gu",
        "ha",
        "haw",
        "he",
        "hi",
        "hr",
        "ht",
        "hu",
        "hy",
        "id",
        "is",
        "it",
        "ja",
        "jw",
        "ka",
        "kk",
        "km",
        "kn",
        "ko",
        "la",
        "lb",
        "ln",
        "lo",
        "lt",
        "lv",
        "mg",
        "mi",
        "mk",
        "ml",
        "mn",
        "mr",
        "ms",
        "mt",
        "my",
        "ne",
        "nl",
        "nn",
        "no",
        "oc",
        "pa",
        "pl",
        "ps",
        "pt",
        "ro",
        "ru",
        "sa",
        "sd",
        "si",
        "sk",
        "sl",
        "sn",
        "so",
        "sq",
        "sr",
        "su",
        "sv",
        "sw",
        "ta",
        "te",
        "tg",
        "th",
        "tk",
        "tl",
        "tr",
        "tt",
        "uk",
        "ur",
        "uz",
        "vi",
        "yi",
        "yo",
        "yue",
        "zh",
    ]
)
MAX_PROMPT_CHARS = 2000
FORM_OVERHEAD = 256 * 1024  # the text fields beside the file
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    model: str | None
    upload: AudioUpload
    options: TranscribeOptions
    response_format: str
    granularities: frozenset[str]


async def read_upload_form(request: Request, max_file_bytes: int, what: str = "audio") -> Form:
    """The multipart form, refusing a body or a file over the upload limit with 413."""
    try:
        form = await read_form(request, max_file_bytes + FORM_OVERHEAD)
    except PayloadTooLarge:
        raise _too_large(max_file_bytes, what) from None
    upload = form.files.get("file")
    if upload is not None and len(upload.data) > max_file_bytes:
        raise _too_large(max_file_bytes, what)
    return form


def _too_large(limit: int, what: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the {what} file is over the {limit / 1024 / 1024:g} MB limit",
        code="file_too_large",
        param="file",
    )


def audio_upload(form: Form, what: str = "audio") -> AudioUpload:
    """The `file` part (400 when missing); its name is kept as a label only, made safe."""
    file = form.files.get("file")
    if file is None:
        raise BadRequest(f"the form needs a `file` part with the {what}", param="file")
    return upload_of(file, what)


def upload_of(file: UploadedFile, what: str) -> AudioUpload:
    """An uploaded file for an engine; its name is kept as a label only, made safe."""
    name = _SAFE_NAME.sub("_", file.filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])[:64]
    ctype = file.content_type if re.fullmatch(r"[\w.+-]+/[\w.+-]+", file.content_type) else ""
    return AudioUpload(file.data, name or what, ctype or "application/octet-stream")


def language_field(form: Form, name: str = "language") -> str | None:
    value = (form.get(name) or "").strip().lower() or None
    if value is not None and value not in LANGUAGES:
        raise BadRequest(
            f"unsupported language {value!r} (an ISO-639-1 code such as en, ko, ja, zh)",
            code="unsupported_language",
            param=name,
        )
    return value


def parse_transcription(form: Form) -> TranscriptionRequest:
    """OpenAI's fields: file, model, language, prompt, temperature, response_format, granularities."""
    upload = audio_upload(form)
    response_format = (form.get("response_format") or "json").strip()
    if response_format not in RESPONSE_FORMATS:
        raise BadRequest(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}",
            code="invalid_response_format",
            param="response_format",
        )
    granularities = frozenset(
        g.strip()
        for g in form.all("timestamp_granularities[]") + form.all("timestamp_granularities")
        if g.strip()
    )
    if not granularities <= set(GRANULARITIES):
        raise BadRequest(
            "timestamp_granularities[] takes word and/or segment",
            code="invalid_request",
            param="timestamp_granularities",
        )
    prompt = form.get("prompt")
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"prompt is longer than {MAX_PROMPT_CHARS} characters", param="prompt")
    from megacity.engines.speech import TranscribeOptions

    options = TranscribeOptions(
        language=language_field(form),
        prompt=prompt or None,
        temperature=_temperature(form.get("temperature")),
        word_timestamps=response_format == "verbose_json" and "word" in granularities,
    )
    model = (form.get("model") or "").strip() or None
    return TranscriptionRequest(model, upload, options, response_format, granularities)


def _temperature(raw: str | None) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise BadRequest("temperature must be a number from 0 to 1", param="temperature")
    return value


def render(transcript: Transcript, request: TranscriptionRequest) -> Response:
    """The response body in the requested format, as OpenAI shapes it."""
    fmt = request.response_format
    if fmt == "json":
        return _json({"text": transcript.text})
    if fmt == "verbose_json":
        words = "word" in request.granularities
        segments = "segment" in request.granularities or not words
        return _json(transcript.to_verbose_json(words=words, segments=segments))
    if fmt == "text":
        return Response(transcript.text + "\n", media_type="text/plain; charset=utf-8")
    if fmt == "srt":
        return Response(to_srt(transcript), media_type="application/x-subrip; charset=utf-8")
    return Response(to_vtt(transcript), media_type="text/vtt; charset=utf-8")


def _json(body: dict[str, object]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def to_srt(transcript: Transcript) -> str:
    """SubRip: numbered cues, HH:MM:SS,mmm times."""
    cues = [
        f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(transcript.segments, 1)
    ]
    return "\n".join(cues)


def to_vtt(transcript: Transcript) -> str:
    """WebVTT: a header, then HH:MM:SS.mmm cues."""
    cues = [
        f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n"
        for s in transcript.segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)

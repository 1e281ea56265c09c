"""Audio input: any common container/codec decoded in memory to 16 kHz mono float32 (PyAV).

Uploads are decoded from the bytes received, never from a file named by the client.
Every refusal is a 4xx with its own code (README, "Speech → errors"):

=========================  ======  ====================================================
code                       status  when
=========================  ======  ====================================================
``file_too_large``         413     over the upload limit (checked by the HTTP layer)
``empty_audio``            400     a file of zero bytes
``unsupported_audio``      415     not a media file FFmpeg recognises (text, random bytes)
``no_audio_stream``        415     a media file without sound (an image, a silent video)
``corrupt_audio``          422     an audio file whose data cannot be decoded
``audio_too_short``        422     under 0.1 s of sound
``audio_too_long``         422     over the configured duration (default 10 min)
=========================  ======  ====================================================
"""

from __future__ import annotations

import io
import logging

import av
import numpy as np

from megacity.engines.media import ffmpeg_reason, too_long
from megacity.errors import BadRequest, UnprocessableEntity, UnsupportedMediaType

log = logging.getLogger("megacity.audio")

SAMPLE_RATE = 16_000
MIN_SECONDS = 0.1


def decode_audio(data: bytes, *, max_seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an audio file held in memory to mono float32 samples at `sample_rate` Hz."""
    if not data:
        raise BadRequest("the audio file is empty", code="empty_audio", param="file")
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UnsupportedMediaType(
            "the file is not audio in a supported format (wav, mp3, m4a/aac, ogg/opus, webm,"
            f" flac): {ffmpeg_reason(exc)}",
            code="unsupported_audio",
            param="file",
        ) from None
    with container:
        if not container.streams.audio:
            raise UnsupportedMediaType(
                f"the file ({container.format.name}) has no audio stream",
                code="no_audio_stream",
                param="file",
            )
        _check_declared_duration(container, max_seconds)
        samples = _decode(container, container.streams.audio[0], max_seconds, sample_rate)
    if samples.size < MIN_SECONDS * sample_rate:
        if samples.size == 0:
            raise UnprocessableEntity(
                "the audio file holds no decodable sound", code="corrupt_audio", param="file"
            )
        raise UnprocessableEntity(
            f"the audio is {samples.size / sample_rate:.3f} s long; at least {MIN_SECONDS} s"
            " is needed",
            code="audio_too_short",
            param="file",
        )
    return samples


def _check_declared_duration(container: av.container.InputContainer, max_seconds: float) -> None:
    # The header's duration refuses a long file before decoding it; decoding still counts,
    # because a header can lie.
    if container.duration is not None and container.duration / av.time_base > max_seconds + 1:
        raise too_long("audio", container.duration / av.time_base, max_seconds)


def _decode(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    max_seconds: float,
    sample_rate: int,
) -> np.ndarray:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    limit = int((max_seconds + 0.05) * sample_rate)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                total += _append(chunks, out)
            if total > limit:
                raise too_long("audio", total / sample_rate, max_seconds)
        for out in resampler.resample(None):
            total += _append(chunks, out)
    except av.FFmpegError as exc:
        if total < MIN_SECONDS * sample_rate:
            raise UnprocessableEntity(
                f"the audio data cannot be decoded: {ffmpeg_reason(exc)}",
                code="corrupt_audio",
                param="file",
            ) from None
        # A damaged tail after real sound: keep what decoded (as ffmpeg and Whisper do).
        log.info("audio decode stopped early", extra={"reason": ffmpeg_reason(exc)})
    if total > limit:
        raise too_long("audio", total / sample_rate, max_seconds)
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _append(chunks: list[np.ndarray], frame: av.AudioFrame) -> int:
    array = frame.to_ndarray().reshape(-1)
    chunks.append(array)
    return int(array.size)

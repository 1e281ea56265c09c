"""Watermarks: every generated artefact carries a detectable, keyed watermark.

Images get an invisible ``dwtDct`` mark plus "AI generated" PNG text chunks
(``image_watermark``); audio gets a spread-spectrum mark (``audio_watermark``). Both
``verify_*`` functions return the same ``WatermarkCheck``; ``verify_file`` picks one by
content, for the ``megacity watermark verify`` command.
"""

from __future__ import annotations

import io
import os

import numpy as np

from megacity.safety.audio_watermark import verify_audio, watermark_audio
from megacity.safety.image_watermark import (
    DEFAULT_WATERMARK_KEY,
    WatermarkCheck,
    verify_image,
    watermark_image,
)

__all__ = [
    "DEFAULT_WATERMARK_KEY",
    "WatermarkCheck",
    "verify_audio",
    "verify_file",
    "verify_image",
    "watermark_audio",
    "watermark_image",
]

_FILE_RATE = 16_000  # Hz: audio files are decoded at this rate; the mark is below 4 kHz
_FILE_MAX_S = 900  # decode at most 15 minutes of a file


def verify_file(
    path: str | os.PathLike[str], *, key: str = DEFAULT_WATERMARK_KEY
) -> WatermarkCheck:
    """Check an image (any format PIL reads) or audio file (any FFmpeg reads) for the mark.

    ``OSError`` when the file cannot be read, ``ValueError`` when it is neither.
    """
    with open(path, "rb") as file:
        data = file.read()
    try:
        return verify_image(data, key=key)
    except ValueError as not_image:
        if "not a readable image" not in str(not_image):
            raise  # an image, but too small to carry the mark
    return verify_audio(_decode_audio(data), _FILE_RATE, key=key)


def _decode_audio(data: bytes) -> np.ndarray:
    """The first audio stream of ``data`` as mono float32 at ``_FILE_RATE``; ``ValueError`` if none."""
    import av  # only files need it

    chunks: list[np.ndarray] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise ValueError("neither an image nor audio: the file has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=_FILE_RATE)
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
                if sum(chunk.size for chunk in chunks) >= _FILE_MAX_S * _FILE_RATE:
                    break
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"neither an image nor audio: {exc}") from exc
    if not chunks:
        raise ValueError("the audio file holds no decodable sound")
    return np.concatenate(chunks).astype(np.float32)

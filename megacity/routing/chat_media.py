"""A chat's non-text parts made safe to send: fetched, checked, re-encoded, inlined.

The LLM gateway calls `ChatMedia.prepare` once, and only for a chat that has non-text
parts (text-only chats never reach this module). Every part goes to the node as a data
URL the router made itself, so a node never fetches a URL a client chose:

* ``image_url``: an ``http(s)`` URL is fetched here (engines/fetch.py: public
  addresses only, size and time limits, redirects checked), a ``data:`` URL decoded;
  either way the bytes are sniffed and re-encoded without metadata at most
  `max_pixels` (engines/images.py);
* ``video_url``: fetched or decoded the same way; a model that takes video gets the
  video stream remuxed without metadata, any other vision model gets `keyframes`
  evenly spread frames as images, after a text part saying when each was taken;
* ``input_audio``: base64 checked, size-capped and decoded once to prove it is audio.

At most `max_parts` media parts per request, and `max_images` images once videos are
expanded. Work runs concurrently; the first refusal cancels the rest and answers the
client's 4xx naming the part (``messages.0.content.1``).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from megacity.engines.fetch import MediaFetcher
from megacity.engines.media import decode_base64
from megacity.errors import BadRequest
from megacity.routing.modality import TEXT_PARTS
from megacity.routing.registry import ResolvedModel

Part = dict[str, Any]
AUDIO_FORMATS = ("wav", "mp3")


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Per-request caps: media parts, images after expansion, bytes, pixels, keyframes."""

    max_parts: int = 8
    max_images: int = 16
    max_image_bytes: int = 10 * 1024 * 1024
    max_video_bytes: int = 50 * 1024 * 1024
    max_audio_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 1_600_000
    keyframes: int = 6
    max_video_s: float = 300.0
    max_audio_s: float = 600.0


class ChatMedia:
    """Turns a chat's image, video and audio parts into data URLs the router vouches for."""

    def __init__(self, fetcher: MediaFetcher, limits: MediaLimits) -> None:
        self.fetcher = fetcher
        self.limits = limits

    async def prepare(self, payload: dict[str, Any], model: ResolvedModel) -> None:
        """Rewrite `payload["messages"]` in place for `model` (4xx for any bad part)."""
        work: list[tuple[int, int, Awaitable[list[Part]]]] = []
        for i, message in enumerate(payload["messages"]):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") not in TEXT_PARTS:
                    work.append((i, j, self._part(part, model, f"messages.{i}.content.{j}")))
        if len(work) > self.limits.max_parts:
            for _, _, pending in work:
                pending.close()  # type: ignore[attr-defined]  # coroutines never started
            raise BadRequest(
                f"{len(work)} media parts; at most {self.limits.max_parts} per request",
                code="too_many_media_parts",
                param="messages",
            )
        done = await _all_or_nothing([w for _, _, w in work])
        replaced = {(i, j): parts for (i, j, _), parts in zip(work, done, strict=True)}
        images = sum(p.get("type") == "image_url" for parts in done for p in parts)
        if images > self.limits.max_images:
            raise BadRequest(
                f"{images} images once videos are cut into keyframes; at most"
                f" {self.limits.max_images} per request",
                code="too_many_media_parts",
                param="messages",
            )
        for i, message in enumerate(payload["messages"]):
            content = message.get("content")
            if isinstance(content, list) and any(key[0] == i for key in replaced):
                message["content"] = [
                    new for j, part in enumerate(content) for new in replaced.get((i, j), [part])
                ]

    async def _part(self, part: Part, model: ResolvedModel, param: str) -> list[Part]:
        kind = part.get("type")
        if kind in ("image_url", "input_image"):
            return [await self._image(part, param)]
        if kind == "video_url":
            return await self._video(part, model, param)
        if kind == "input_audio":
            return [await self._audio(part, param)]
        raise BadRequest(
            f"unsupported content part type {str(kind)[:40]!r}",
            code="unsupported_content_part",
            param=param,
        )

    async def _image(self, part: Part, param: str) -> Part:
        from megacity.engines.images import prepare_image

        ref = part.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        where = f"{param}.image_url"
        data = await self._bytes(url, where, self.limits.max_image_bytes, "image/*")
        image = await asyncio.to_thread(
            prepare_image, data, max_pixels=self.limits.max_pixels, param=where
        )
        out: dict[str, Any] = {"url": image.data_url()}
        if isinstance(ref, dict) and ref.get("detail") in ("auto", "low", "high"):
            out["detail"] = ref["detail"]
        return {"type": "image_url", "image_url": out}

    async def _video(self, part: Part, model: ResolvedModel, param: str) -> list[Part]:
        from megacity.engines.frames import keyframes, strip_video
        from megacity.engines.images import encode_rgb

        ref = part.get("video_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        data = await self._bytes(url, f"{param}.video_url", self.limits.max_video_bytes, "video/*")
        limit = self.limits.max_video_s
        if "video" in model.modalities:
            clean = await asyncio.to_thread(strip_video, data, max_seconds=limit)
            url = f"data:video/mp4;base64,{base64.b64encode(clean).decode('ascii')}"
            return [{"type": "video_url", "video_url": {"url": url}}]

        def frames() -> list[tuple[float, Any]]:
            shots = keyframes(data, self.limits.keyframes, max_seconds=limit)
            return [(t, encode_rgb(rgb, max_pixels=self.limits.max_pixels)) for t, rgb in shots]

        shots = await asyncio.to_thread(frames)
        times = ", ".join(f"{t:.1f} s" for t, _ in shots)
        note = {"type": "text", "text": f"[video: {len(shots)} frames, at {times}]"}
        return [note] + [
            {"type": "image_url", "image_url": {"url": image.data_url()}} for _, image in shots
        ]

    async def _audio(self, part: Part, param: str) -> Part:
        from megacity.engines.audio import decode_audio

        ref = part.get("input_audio")
        data = ref.get("data") if isinstance(ref, dict) else None
        fmt = ref.get("format") if isinstance(ref, dict) else None
        if not isinstance(data, str) or fmt not in AUDIO_FORMATS:
            raise BadRequest(
                "input_audio needs base64 `data` and a `format` (wav or mp3)",
                code="invalid_audio_part",
                param=param,
            )
        limit = self.limits.max_audio_bytes
        raw = decode_base64(data, max_bytes=limit, param=param, code="invalid_audio_part")
        await asyncio.to_thread(decode_audio, raw, max_seconds=self.limits.max_audio_s)
        return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}

    async def _bytes(self, url: object, param: str, limit: int, accept: str) -> bytes:
        from megacity.engines.images import decode_data_url

        if not isinstance(url, str) or not url:
            raise BadRequest("the part needs a `url`", code="url_invalid", param=param)
        if url[:5].lower() == "data:":
            return decode_data_url(url, max_bytes=limit, param=param)[1]
        fetched = await self.fetcher.fetch(url, param=param, accept=accept, max_bytes=limit)
        return fetched.data


async def _all_or_nothing(work: list[Awaitable[list[Part]]]) -> list[list[Part]]:
    """Run concurrently; on the first failure cancel the others and raise it."""
    tasks = [asyncio.ensure_future(w) for w in work]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [t.result() for t in tasks]
    finally:
        for task in tasks:
            task.cancel()

"""The generation routes: the zone's image or TTS model, then a node — in-process or remote.

A node with ``url: local`` is this process's own ImageEngine / TTSEngine; a remote node
(``megacity engine image|tts``) gets the request as OpenAI JSON. Both go through the
balancer's lease, limits and single failover like speech and pose. Generation runs in
job workers (pipelines/generation.py), never in an HTTP request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from megacity.config.topology import Engine
from megacity.engines.generation import (
    ImageBatch,
    SpeechOutput,
    SpeechRequest,
    render_images,
    render_speech,
)
from megacity.engines.generation_http import GenerationHTTPClient
from megacity.engines.image import ImageEngine, ImageRequest
from megacity.engines.openai_http import UpstreamFailure
from megacity.engines.tts import TTSEngine
from megacity.observability.metrics import Metrics
from megacity.routing.balancer import Balancer, Lease
from megacity.routing.context import RequestContext
from megacity.routing.engine_call import EngineCaller
from megacity.routing.registry import ModelRegistry
from megacity.routing.selector import Decision, ModelSelector

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Generated(Generic[T]):
    """What a generation node made, and which node made it."""

    value: T
    node: str


class GenerationGateway:
    """Image and speech generation: model decision, node choice, one failover."""

    def __init__(
        self,
        selector: ModelSelector,
        registry: ModelRegistry,
        balancer: Balancer,
        images: dict[str, ImageEngine],
        voices: dict[str, TTSEngine],
        metrics: Metrics,
        *,
        watermark_key: str,
        timeout_s: float,
        queue_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self._selector = selector
        self._registry = registry
        self.image_engines = images  # in-process engines by node name
        self.tts_engines = voices
        self._key = watermark_key
        self._timeout_s = timeout_s
        self._image_caller, self._tts_caller = (
            EngineCaller(
                kind,
                balancer,
                metrics,
                queue_timeout_s=queue_timeout_s,
                retry_after_s=retry_after_s,
            )
            for kind in ("image", "tts")
        )
        self.client: GenerationHTTPClient | None = None  # set at start (needs the aiohttp session)

    def decide(self, engine: Engine, ctx: RequestContext, requested: str | None = None) -> Decision:
        """The image or TTS model for this request (raises the 4xx for a bad model or zone)."""
        return self._selector.select_engine(engine, requested, ctx)

    async def images(
        self,
        ctx: RequestContext,
        model: str,
        request: ImageRequest,
        *,
        started: float,
        progress: Callable[[float], None] | None = None,
    ) -> Generated[ImageBatch]:
        """Watermarked PNGs from the best image node for `model` (a registry name)."""
        served_as = self._registry.resolve(model).served_as

        async def call(lease: Lease) -> ImageBatch:
            engine = self.image_engines.get(lease.name)
            if engine is not None:
                return await self._local(
                    lease,
                    render_images(engine, request, watermark_key=self._key, progress=progress),
                )
            return await self._http().images(lease.state.node, served_as, request, ctx.request_id)

        answer = await self._image_caller.run(ctx, model, started, call)
        return Generated(answer.value, answer.node)

    async def speech(
        self, ctx: RequestContext, model: str, request: SpeechRequest, *, started: float
    ) -> Generated[SpeechOutput]:
        """Watermarked, encoded speech from the best TTS node for `model`."""
        served_as = self._registry.resolve(model).served_as

        async def call(lease: Lease) -> SpeechOutput:
            engine = self.tts_engines.get(lease.name)
            if engine is not None:
                return await self._local(
                    lease, render_speech(engine, request, watermark_key=self._key)
                )
            return await self._http().speech(lease.state.node, served_as, request, ctx.request_id)

        answer = await self._tts_caller.run(ctx, model, started, call)
        return Generated(answer.value, answer.node)

    async def _local(self, lease: Lease, work: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await work
        except TimeoutError:
            raise UpstreamFailure(lease.name, "timeout", "generation took too long") from None

    def _http(self) -> GenerationHTTPClient:
        if self.client is None:
            raise RuntimeError("generation gateway not started")
        return self.client

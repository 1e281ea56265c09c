"""The speech route: pick the zone's speech model, then a node — in-process or remote — with failover.

A node with ``url: local`` is this process's own SpeechEngine: the router decodes the
upload and transcribes it in a worker thread. A remote node gets the upload as it came
(it decodes it itself). Either way the balancer's lease bounds the requests in flight,
and a node that fails before answering — a remote one that is down, hung or answers
5xx, a local one whose model cannot be loaded — is retried once on another node.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from megacity.config.topology import Engine
from megacity.engines.audio import decode_audio
from megacity.engines.speech import SpeechEngine, TranscribeOptions, Transcript
from megacity.engines.speech_http import AudioUpload, SpeechHTTPClient
from megacity.observability.metrics import Metrics
from megacity.routing.balancer import Balancer, Lease
from megacity.routing.context import RequestContext
from megacity.routing.engine_call import EngineCaller
from megacity.routing.selector import Decision, ModelSelector


@dataclass(frozen=True, slots=True)
class SpeechAnswer:
    """A transcript and where it came from (for the X-MegaCity-* headers)."""

    transcript: Transcript
    decision: Decision
    node: str
    route_ms: float


class SpeechGateway:
    """Transcription requests: model decision, node choice, one failover, lease released."""

    def __init__(
        self,
        selector: ModelSelector,
        balancer: Balancer,
        engines: dict[str, SpeechEngine],
        metrics: Metrics,
        *,
        max_audio_s: float,
        queue_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self._selector = selector
        self.engines = engines  # in-process engines by node name
        self._max_audio_s = max_audio_s
        self._caller = EngineCaller(
            "speech",
            balancer,
            metrics,
            queue_timeout_s=queue_timeout_s,
            retry_after_s=retry_after_s,
        )
        self.client: SpeechHTTPClient | None = None  # set at start (needs the aiohttp session)

    def decide(self, ctx: RequestContext, requested: str | None) -> Decision:
        """The speech model for this request (raises the 4xx for a bad model or zone)."""
        return self._selector.select_engine(Engine.SPEECH, requested, ctx)

    async def transcribe(
        self,
        ctx: RequestContext,
        decision: Decision,
        upload: AudioUpload,
        options: TranscribeOptions,
        started: float,
    ) -> SpeechAnswer:
        """Transcribe on the best node, failing over once to another."""
        samples: list[np.ndarray] = []  # decoded once, only if an in-process node serves

        async def call(lease: Lease) -> Transcript:
            engine = self.engines.get(lease.name)
            if engine is None:
                return await self._remote(lease, decision, upload, options, ctx)
            if not samples:
                samples.append(
                    await asyncio.to_thread(
                        decode_audio, upload.data, max_seconds=self._max_audio_s
                    )
                )
            return await engine.transcribe(samples[0], options)

        answer = await self._caller.run(ctx, decision.model.name, started, call)
        return SpeechAnswer(answer.value, decision, answer.node, answer.route_ms)

    async def _remote(
        self,
        lease: Lease,
        decision: Decision,
        upload: AudioUpload,
        options: TranscribeOptions,
        ctx: RequestContext,
    ) -> Transcript:
        if self.client is None:
            raise RuntimeError("speech gateway not started")
        node = lease.state.node
        return await self.client.transcribe(
            node, decision.model.served_as, upload, options, ctx.request_id
        )

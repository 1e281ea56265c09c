"""The speech route: pick the zone's speech model, then a node — in-process or remote — with failover.

A node with ``url: local`` is this process's own SpeechEngine: the router decodes the
upload and transcribes it in a worker thread. A remote node gets the upload as it came
(it decodes it itself). Either way the balancer's lease bounds the requests in flight,
and a node that fails before answering — a remote one that is down, hung or answers
5xx, a local one whose model cannot be loaded — is retried once on another node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from megacity.config.topology import Engine
from megacity.engines.audio import decode_audio
from megacity.engines.openai_http import UpstreamFailure
from megacity.engines.speech import ModelUnavailable, SpeechEngine, TranscribeOptions, Transcript
from megacity.engines.speech_http import AudioUpload, SpeechHTTPClient
from megacity.errors import MegaCityError, UpstreamError, UpstreamTimeout
from megacity.observability.metrics import Metrics
from megacity.routing.balancer import Balancer, Lease
from megacity.routing.context import RequestContext
from megacity.routing.selector import Decision, ModelSelector

log = logging.getLogger("megacity.speech")

MAX_ATTEMPTS = 2


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
        self._balancer = balancer
        self.engines = engines  # in-process engines by node name
        self._metrics = metrics
        self._max_audio_s = max_audio_s
        self._queue_timeout_s = queue_timeout_s
        self._retry_after_s = retry_after_s
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
        model = decision.model.name
        tried: list[str] = []
        route_ms = 0.0
        failure: Exception | None = None
        samples = None  # decoded once, only if an in-process node takes the request
        for attempt in range(MAX_ATTEMPTS):
            if attempt and not self._balancer.any_alive(model, tried):
                break
            lease = await self._balancer.acquire(
                model,
                ctx.region,
                exclude=tried,
                timeout_s=self._queue_timeout_s,
                retry_after_s=self._retry_after_s,
            )
            if not attempt:
                route_ms = (time.perf_counter() - started) * 1000
                self._metrics.observe_route(route_ms / 1000)
            outcome: bool | None = None
            try:
                engine = self.engines.get(lease.name)
                if engine is not None:
                    if samples is None:
                        samples = await asyncio.to_thread(
                            decode_audio, upload.data, max_seconds=self._max_audio_s
                        )
                    transcript = await engine.transcribe(samples, options)
                else:
                    transcript = await self._remote(lease, decision, upload, options, ctx)
                outcome = True
                return SpeechAnswer(transcript, decision, lease.name, route_ms)
            except (UpstreamFailure, ModelUnavailable) as exc:
                outcome = None if isinstance(exc, ModelUnavailable) else False
                failure = exc
                tried.append(lease.name)
                self._failed(lease, exc, ctx, attempt, model)
            except MegaCityError:
                outcome = True  # the node worked; the request was bad (e.g. corrupt audio)
                raise
            finally:
                self._balancer.release(lease, outcome)
        raise _client_error(failure, model)

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

    def _failed(
        self, lease: Lease, exc: Exception, ctx: RequestContext, attempt: int, model: str
    ) -> None:
        kind = exc.kind if isinstance(exc, UpstreamFailure) else "model_unavailable"
        if isinstance(exc, ModelUnavailable):
            lease.state.health_reason = exc.message
        self._metrics.upstream_error(lease.name, kind)
        log.warning(
            "speech node failed",
            extra={
                "request_id": ctx.request_id,
                "node": lease.name,
                "kind": kind,
                "detail": getattr(exc, "detail", str(exc))[:300],
                "attempt": attempt + 1,
            },
        )
        if attempt + 1 < MAX_ATTEMPTS:
            self._metrics.failover(model, lease.name)


def _client_error(failure: Exception | None, model: str) -> MegaCityError:
    if isinstance(failure, MegaCityError):
        return failure  # e.g. the model cannot be loaded: its message says what to configure
    if isinstance(failure, UpstreamFailure) and failure.kind == "timeout":
        return UpstreamTimeout(f"the speech node for {model!r} did not answer in time")
    if isinstance(failure, UpstreamFailure):
        return UpstreamError(f"the speech node for {model!r} failed ({failure.kind})")
    return UpstreamError(f"no node could serve model {model!r}")

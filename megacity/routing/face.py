"""The face route: the zone's face model, then an in-process face node, with the usual lease.

Face nodes run in the router (``url: local``); the balancer still bounds the analyses in
flight per node, and a node whose model cannot be loaded is failed over like any other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from megacity.config.topology import Engine
from megacity.engines.face import FaceEngine, FaceTrack
from megacity.engines.openai_http import UpstreamFailure
from megacity.observability.metrics import Metrics
from megacity.routing.balancer import Balancer, Lease
from megacity.routing.context import RequestContext
from megacity.routing.engine_call import EngineCaller
from megacity.routing.selector import Decision, ModelSelector


@dataclass(frozen=True, slots=True)
class FaceAnswer:
    """A face track and where it came from."""

    track: FaceTrack
    decision: Decision
    node: str
    route_ms: float


class FaceGateway:
    """Face analyses: model decision, node choice, one failover, lease released."""

    def __init__(
        self,
        selector: ModelSelector,
        balancer: Balancer,
        engines: dict[str, FaceEngine],
        metrics: Metrics,
        *,
        max_video_s: float,
        queue_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self._selector = selector
        self.engines = engines  # by node name (face nodes are in-process)
        self._max_video_s = max_video_s
        self._caller = EngineCaller(
            "face", balancer, metrics, queue_timeout_s=queue_timeout_s, retry_after_s=retry_after_s
        )

    def decide(self, ctx: RequestContext) -> Decision:
        """The zone's face model (400 when the zone has none)."""
        return self._selector.select_engine(Engine.FACE, None, ctx)

    async def video(
        self,
        ctx: RequestContext,
        decision: Decision,
        data: bytes,
        started: float,
        *,
        fps: float | None = None,
    ) -> FaceAnswer:
        """Blendshapes and head pose of a video's sampled frames."""
        limit = self._max_video_s
        return await self._run(
            ctx, decision, started, lambda e: e.video(data, max_seconds=limit, fps=fps)
        )

    async def images(
        self, ctx: RequestContext, decision: Decision, pictures: Sequence[Any], started: float
    ) -> FaceAnswer:
        """Blendshapes and head pose of RGB pictures, one frame each."""
        return await self._run(ctx, decision, started, lambda e: e.images(pictures))

    async def _run(
        self,
        ctx: RequestContext,
        decision: Decision,
        started: float,
        work: Callable[[FaceEngine], Awaitable[FaceTrack]],
    ) -> FaceAnswer:
        async def call(lease: Lease) -> FaceTrack:
            engine = self.engines.get(lease.name)
            if engine is None:  # the topology keeps face nodes in-process
                raise UpstreamFailure(lease.name, "status", "no in-process face engine")
            return await work(engine)

        answer = await self._caller.run(ctx, decision.model.name, started, call)
        return FaceAnswer(answer.value, decision, answer.node, answer.route_ms)

"""The pose route: pick the zone's pose model, then a node — in-process or remote — with failover.

A node with ``url: local`` is this process's own PoseEngine (MediaPipe in worker
processes); a remote node (``megacity engine pose``) gets the video as it came and answers
the keypoints. Both go through the same lease, limits and single failover as speech.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from megacity.config.topology import Engine
from megacity.engines.keypoints import PoseExtraction
from megacity.engines.openai_http import UpstreamFailure
from megacity.engines.pose import PoseEngine
from megacity.engines.pose_http import PoseHTTPClient
from megacity.engines.upload import MediaUpload
from megacity.observability.metrics import Metrics
from megacity.routing.balancer import Balancer, Lease
from megacity.routing.context import RequestContext
from megacity.routing.engine_call import EngineCaller
from megacity.routing.selector import Decision, ModelSelector


@dataclass(frozen=True, slots=True)
class PoseAnswer:
    """Keypoints of a video and where they came from (for the X-MegaCity-* headers)."""

    extraction: PoseExtraction
    decision: Decision
    node: str
    route_ms: float


class PoseGateway:
    """Pose extraction requests: model decision, node choice, one failover, lease released."""

    def __init__(
        self,
        selector: ModelSelector,
        balancer: Balancer,
        engines: dict[str, PoseEngine],
        metrics: Metrics,
        *,
        max_video_s: float,
        timeout_s: float,
        queue_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self._selector = selector
        self.engines = engines  # in-process engines by node name
        self._max_video_s = max_video_s
        self._timeout_s = timeout_s
        self._caller = EngineCaller(
            "pose", balancer, metrics, queue_timeout_s=queue_timeout_s, retry_after_s=retry_after_s
        )
        self.client: PoseHTTPClient | None = None  # set at start (needs the aiohttp session)

    def decide(self, ctx: RequestContext, requested: str | None = None) -> Decision:
        """The pose model for this request (raises the 4xx for a bad model or zone)."""
        return self._selector.select_engine(Engine.POSE, requested, ctx)

    async def extract(
        self, ctx: RequestContext, decision: Decision, upload: MediaUpload, started: float
    ) -> PoseAnswer:
        """Keypoints of the uploaded video from the best node, failing over once."""

        async def call(lease: Lease) -> PoseExtraction:
            engine = self.engines.get(lease.name)
            if engine is not None:
                try:
                    async with asyncio.timeout(self._timeout_s):
                        return await engine.extract(upload.data, max_seconds=self._max_video_s)
                except TimeoutError:
                    raise UpstreamFailure(lease.name, "timeout", "no keypoints in time") from None
            if self.client is None:
                raise RuntimeError("pose gateway not started")
            return await self.client.extract(
                lease.state.node, decision.model.served_as, upload, ctx.request_id
            )

        answer = await self._caller.run(ctx, decision.model.name, started, call)
        return PoseAnswer(answer.value, decision, answer.node, answer.route_ms)

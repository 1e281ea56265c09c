"""One request to a non-LLM engine (speech, pose, …): lease a node, call it, fail over once.

A node is either this process's own engine (``url: local``) or a remote engine node; the
gateway of each engine passes a ``call(lease)`` that does the right thing for the leased
node. The balancer's lease bounds the requests in flight on every node. A node that fails
before answering — a remote one that is down, hung or answers 5xx (``UpstreamFailure``), a
local one whose model cannot be loaded (``ModelUnavailable``) — is retried once on another
node; a 4xx the node raised (bad input) is the client's and goes back unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from megacity.engines.errors import ModelUnavailable
from megacity.engines.openai_http import UpstreamFailure
from megacity.errors import MegaCityError, UpstreamError, UpstreamTimeout
from megacity.observability.metrics import Metrics
from megacity.routing.balancer import Balancer, Lease
from megacity.routing.context import RequestContext
from megacity.routing.regions import MAX_REFUSED, RegionWatch, refused

log = logging.getLogger("megacity.engines")

MAX_ATTEMPTS = 2
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EngineAnswer(Generic[T]):
    """What the engine returned, the node that served it and the routing time (ms)."""

    value: T
    node: str
    route_ms: float


class EngineCaller:
    """Runs engine requests for one engine kind (its name labels logs and errors)."""

    def __init__(
        self,
        kind: str,
        balancer: Balancer,
        metrics: Metrics,
        *,
        queue_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self.kind = kind
        self._balancer = balancer
        self._metrics = metrics
        self._queue_timeout_s = queue_timeout_s
        self._retry_after_s = retry_after_s
        self._regions = RegionWatch(balancer, metrics)

    async def run(
        self,
        ctx: RequestContext,
        model: str,
        started: float,
        call: Callable[[Lease], Awaitable[T]],
    ) -> EngineAnswer[T]:
        """`call(lease)` on the best node for `model`, failing over once to another node.

        A refused connection does not use up the attempt (see `Dispatcher.send`).
        """
        tried: list[str] = []
        route_ms = 0.0
        failure: Exception | None = None
        attempt = refusals = 0
        while attempt < MAX_ATTEMPTS:
            if tried and not self._balancer.any_alive(model, tried):
                break
            lease = await self._balancer.acquire(
                model,
                ctx.region,
                exclude=tried,
                timeout_s=self._queue_timeout_s,
                retry_after_s=self._retry_after_s,
            )
            if not tried:
                route_ms = (time.perf_counter() - started) * 1000
                self._metrics.observe_route(route_ms / 1000)
            outcome: bool | None = None
            try:
                value = await call(lease)
                outcome = True
                self._regions.served(self.kind, ctx.region, lease, ctx.request_id)
                return EngineAnswer(value, lease.name, route_ms)
            except (UpstreamFailure, ModelUnavailable) as exc:
                outcome = None if isinstance(exc, ModelUnavailable) else False
                failure = exc
                tried.append(lease.name)
                self._failed(lease, exc, ctx, attempt, model)
                if (
                    isinstance(exc, UpstreamFailure)
                    and exc.kind == "connect"
                    and refusals < MAX_REFUSED
                ):
                    refused(lease)
                    refusals += 1
                else:
                    attempt += 1
            except MegaCityError:
                outcome = True  # the node worked; the request was bad (e.g. corrupt media)
                raise
            finally:
                self._balancer.release(lease, outcome)
        raise self._client_error(failure, model)

    def _failed(
        self, lease: Lease, exc: Exception, ctx: RequestContext, attempt: int, model: str
    ) -> None:
        kind = exc.kind if isinstance(exc, UpstreamFailure) else "model_unavailable"
        if isinstance(exc, ModelUnavailable):
            lease.state.health_reason = exc.message
        lease.state.note_error(kind, getattr(exc, "detail", str(exc)))
        self._metrics.upstream_error(lease.name, kind)
        log.warning(
            f"{self.kind} node failed",
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

    def _client_error(self, failure: Exception | None, model: str) -> MegaCityError:
        if isinstance(failure, MegaCityError):
            return failure  # e.g. the model cannot be loaded: its message says what to set
        if isinstance(failure, UpstreamFailure) and failure.kind == "timeout":
            return UpstreamTimeout(f"the {self.kind} node for {model!r} did not answer in time")
        if isinstance(failure, UpstreamFailure):
            return UpstreamError(f"the {self.kind} node for {model!r} failed ({failure.kind})")
        return UpstreamError(f"no node could serve model {model!r}")

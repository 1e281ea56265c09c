"""Send an OpenAI-style request to a node: pick, send, fail over once, relay streams unbuffered."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import orjson

from megacity.engines.openai_http import OpenAIHTTPClient, UpstreamFailure, UpstreamResponse
from megacity.errors import MegaCityError, UpstreamError, UpstreamTimeout
from megacity.observability.metrics import Metrics
from megacity.routing.balancer import Balancer, Lease
from megacity.routing.policy import RouteHint
from megacity.routing.regions import MAX_REFUSED, RegionWatch, refused
from megacity.routing.selector import Decision
from megacity.routing.tokens import TokenLedger, Usage, find_usage

log = logging.getLogger("megacity.dispatch")

MAX_ATTEMPTS = 2  # the first node, then one other
_MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Admission:
    """Everything the handler needs beyond the model decision to send one request."""

    path: str  # e.g. /v1/chat/completions
    body: bytes  # the JSON body with the upstream model id already in it
    stream: bool
    request_id: str
    region: str | None
    started: float  # perf_counter() when the request arrived
    route: RouteHint | None = None  # zone, conversation key and tokens for the policy


@dataclass(slots=True)
class Answer:
    """An upstream answer: a whole body, or `chunks` to relay for a stream."""

    status: int
    content_type: str
    decision: Decision
    node: str
    route_ms: float
    body: bytes = b""
    chunks: AsyncIterator[bytes] | None = None
    route: str = ""  # the policy and its reason, for X-MegaCity-Route


class Dispatcher:
    """Runs the attempt loop for one request; routing state lives in the balancer."""

    def __init__(
        self,
        balancer: Balancer,
        client: OpenAIHTTPClient,
        metrics: Metrics,
        *,
        queue_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self._balancer = balancer
        self._client = client
        self._metrics = metrics
        self._queue_timeout_s = queue_timeout_s
        self._retry_after_s = retry_after_s
        self.regions = RegionWatch(balancer, metrics)

    async def send(self, decision: Decision, req: Admission) -> Answer:
        """Answer from the first node that responds; a failure before any byte → one other node.

        A node that refused the connection got nothing: it is marked down and another is
        tried without using up the attempt (regions.py), so a region that fails all at
        once is passed over before the health probes notice.
        """
        model = decision.model.name
        tried: list[str] = []
        route_ms = 0.0
        failure: UpstreamFailure | None = None
        attempt = refusals = 0
        while attempt < MAX_ATTEMPTS:
            if tried and not self._balancer.any_alive(model, tried):
                break
            lease = await self._balancer.acquire(
                model,
                req.region,
                exclude=tried,
                timeout_s=self._queue_timeout_s,
                retry_after_s=self._retry_after_s,
                hint=req.route,
            )
            if not tried:
                route_ms = (time.perf_counter() - req.started) * 1000
                self._metrics.observe_route(route_ms / 1000)
            else:
                lease.reason = "retry"
            self._metrics.route_decision(self._policy_name(req), lease.reason)
            try:
                answer = await self._attempt(lease, decision, req, route_ms)
                self.regions.served("llm", req.region, lease, req.request_id)
                return answer
            except UpstreamFailure as exc:
                failure = exc
                tried.append(lease.name)
                lease.state.note_error(exc.kind, exc.detail)
                self._metrics.upstream_error(lease.name, exc.kind)
                log.warning(
                    "upstream failed",
                    extra={
                        "request_id": req.request_id,
                        "node": lease.name,
                        "kind": exc.kind,
                        "detail": exc.detail,
                        "attempt": attempt + 1,
                    },
                )
                if exc.kind == "connect" and refusals < MAX_REFUSED:
                    refused(lease)
                    refusals += 1
                else:
                    attempt += 1
                if attempt < MAX_ATTEMPTS:
                    self._metrics.failover(model, lease.name)
        raise _client_error(failure, model)

    @property
    def ledger(self) -> TokenLedger:
        """The per-model token estimates the route hints are built with."""
        return self._balancer.tokens

    def _policy_name(self, req: Admission) -> str:
        if req.route is None:
            return "least_loaded"
        return self._balancer.policy(req.route.zone).name

    async def _attempt(
        self, lease: Lease, decision: Decision, req: Admission, route_ms: float
    ) -> Answer:
        """One try on one node; the lease is released here unless a stream takes it over."""
        outcome: bool | None = None
        handed_over = False
        try:
            answer = await self._exchange(lease, decision, req, route_ms)
            handed_over = answer.chunks is not None
            outcome = True
            return answer
        except UpstreamFailure:
            outcome = False
            raise
        finally:  # also on cancellation (the client left): no verdict on the node then
            if not handed_over:
                self._balancer.release(lease, outcome)

    async def _exchange(
        self, lease: Lease, decision: Decision, req: Admission, route_ms: float
    ) -> Answer:
        node = lease.state.node
        resp = await self._client.post(node, req.path, req.body, req.request_id)
        if resp.status >= 500:
            detail = await _read_error(resp)
            raise UpstreamFailure(node.name, "status", detail, resp.status)
        content_type = resp.headers.get("Content-Type", "application/json")
        answer = Answer(resp.status, content_type, decision, node.name, route_ms)
        answer.route = f"{self._policy_name(req)}; reason={lease.reason}"
        if req.stream and resp.status == 200:
            answer.chunks = self._relay(lease, resp, req)
            return answer
        try:
            answer.body = await resp.read()  # a complete read hands the connection back
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            resp.close()
            kind = "timeout" if isinstance(exc, TimeoutError) else "disconnect"
            raise UpstreamFailure(node.name, kind, "body cut before the end") from None
        except BaseException:
            resp.close()  # cancelled: drop the connection so the engine stops
            raise
        self._settle(lease, req, answer.body)
        return answer

    def _settle(self, lease: Lease, req: Admission, tail: bytes, events: int = 0) -> None:
        """Learn the model's real prompt and answer lengths from the engine's usage.

        A stream without `stream_options.include_usage` says only how many events it
        sent: about one token each, less the role and final events and [DONE].
        """
        if req.route is None:
            return
        usage = find_usage(tail)
        if usage is None and events:
            usage = Usage(0, max(0, events - 3))
        if usage is not None:
            self._balancer.settle(lease, req.route.prompt_tokens, usage)

    async def _relay(
        self, lease: Lease, resp: UpstreamResponse, req: Admission
    ) -> AsyncIterator[bytes]:
        """Relay SSE bytes as they come, whole events only, so an error event lands cleanly."""
        outcome: bool | None = None
        pending = b""
        last = b""
        events = 0
        request_id = req.request_id
        try:
            async for chunk in resp.content.iter_any():
                if not events:  # the first token came: the prompt is prefilled
                    self._balancer.prefilled(lease)
                events += chunk.count(b"data:")
                pending += chunk
                cut = pending.rfind(b"\n\n")
                if cut >= 0:
                    out, pending = pending[: cut + 2], pending[cut + 2 :]
                    last = out
                    yield out
            if pending:
                last = pending
                yield pending
            outcome = True
            self._settle(lease, req, last[-2048:], events)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            outcome = False
            kind = "timeout" if isinstance(exc, TimeoutError) else "disconnect"
            lease.state.note_error(kind, "stream broken mid-answer")
            self._metrics.upstream_error(lease.name, kind)
            log.warning(
                "stream broken",
                extra={"request_id": request_id, "node": lease.name, "kind": kind},
            )
            yield stream_error_event(
                f"the model server stopped mid-stream ({kind}); the answer is incomplete",
                "upstream_stream_broken" if kind == "disconnect" else "upstream_timeout",
            )
        finally:
            if outcome is True:
                resp.release()
            else:
                resp.close()  # drops the connection, which makes vLLM abort the generation
            self._balancer.release(lease, outcome)


def stream_error_event(message: str, code: str) -> bytes:
    """An SSE event the openai client raises as APIError, followed by the end marker."""
    body = {"error": {"message": message, "type": "upstream_error", "code": code, "param": None}}
    return b"data: " + orjson.dumps(body) + b"\n\ndata: [DONE]\n\n"


async def _read_error(resp: UpstreamResponse) -> str:
    try:
        data = await resp.content.read(_MAX_ERROR_BODY)
    except (aiohttp.ClientError, TimeoutError, OSError):
        data = b""
    finally:
        resp.close()
    return f"HTTP {resp.status}: {data[:200].decode('utf-8', 'replace')}"


def _client_error(failure: UpstreamFailure | None, model: str) -> MegaCityError:
    if failure is None:
        return UpstreamError(f"no node could serve model {model!r}")
    if failure.kind == "timeout":
        return UpstreamTimeout(f"the model server for {model!r} did not answer in time")
    return UpstreamError(f"the model server for {model!r} failed ({failure.kind})")

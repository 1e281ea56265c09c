"""Per-request rate limits and abuse blocks, after authentication and before routing.

Every authenticated request takes one token from its caller's bucket and, on an engine
route, from its zone's bucket and that engine's (all or none: a refused request costs
nothing). The zone's bucket guards the zone's share of the engines, so an operator's
calls, job polling and the dashboard never spend it (nor lock an admin out when a zone is
busy). A caller the abuse detector blocked gets 429 with the reason until the block
ends. LLM tokens per minute are the LLM guard's (megacity.pipelines.guard), which sees
the prompt.

Who the caller is (`actor`): a named user — a token's subject, or the X-User-Id a
service key (or, with auth off, a client) sends — is one learner, with the user rates,
bursts and firewall blocks. A service key without X-User-Id, or with auth off a client
without one, acts for people it does not name: it is counted per credential *and client
address* under the service rates, and never blocked for a burst or firewall hits (its
repeated prompts are still throttled) — a school's LMS must not become one learner whom
one burst takes down for everyone. Buckets are keyed by keyed hashes, never by ids.
"""

from __future__ import annotations

import logging
import math

from starlette.types import ASGIApp, Receive, Scope, Send

from megacity.api.errors import error_response
from megacity.auth.principal import Principal
from megacity.config.limits import LimitsPolicy
from megacity.config.topology import Engine
from megacity.observability.anonymize import UserHasher
from megacity.observability.metrics import Metrics
from megacity.pipelines.guard import blocked_error
from megacity.safety.abuse import AbuseDetector
from megacity.safety.ratelimit import LIMITER_UNAVAILABLE, Bucket, Rate, RateLimiter

log = logging.getLogger("megacity.limits")

# Which engine a path spends; the abuse detector counts LLM prompts in the LLM guard.
ENGINE_PATHS: tuple[tuple[str, Engine], ...] = (
    ("/v1/chat/completions", Engine.LLM),
    ("/v1/completions", Engine.LLM),
    ("/api/v1/tutor/", Engine.LLM),
    ("/api/v1/ai/multimodal", Engine.LLM),  # its LLM guard counts the request (fingerprint)
    ("/v1/audio/transcriptions", Engine.SPEECH),
    ("/api/v1/kzone/voice/", Engine.SPEECH),
    ("/api/v1/kzone/dance", Engine.POSE),
    ("/v1/images/", Engine.IMAGE),
    ("/api/v1/kzone/generate/thumbnail", Engine.IMAGE),
    ("/v1/audio/speech", Engine.TTS),
    ("/api/v1/kzone/tts", Engine.TTS),
)


def engine_of(path: str) -> Engine | None:
    """The engine a request path spends, if any."""
    for prefix, engine in ENGINE_PATHS:
        if path.startswith(prefix):
            return engine
    return None


class LimitMiddleware:
    """Pure ASGI: 429 with Retry-After when a bucket is empty or the user is blocked."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter | None,
        abuse: AbuseDetector | None,
        policy: LimitsPolicy,
        hasher: UserHasher,
        default_zone: str | None,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.limiter = limiter if policy.enabled else None
        self.abuse = abuse
        self.hasher = hasher
        self.default_zone = default_zone or ""
        self.metrics = metrics
        self.user_rate = _rate(policy.user_requests)
        self.service_rate = _rate(policy.service_requests)
        self.zone_rate = _rate(policy.zone_requests)
        self.engine_rates = {e: _rate(r) for e, r in policy.engine_requests.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        principal = state.get("principal")
        if scope["type"] != "http" or principal is None:  # public paths: nothing to count
            await self.app(scope, receive, send)
            return
        user, named = actor(scope, principal, self.hasher)
        state["user_key"] = user
        state["user_named"] = named
        zone = _header(scope, b"x-zone") or self.default_zone
        engine = engine_of(scope["path"])
        refusal = await self._check(user, named, zone[:128], engine)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _check(
        self, user: str, named: bool, zone: str, engine: Engine | None
    ) -> ASGIApp | None:
        if self.abuse is not None:
            block = await self.abuse.blocked(user)
            if block is None and named and engine is not Engine.LLM:
                block = await self.abuse.record_request(user)
            if block is not None:
                self.metrics.safety_event("abuse", "refused", zone)
                err = blocked_error(block)
                return error_response(
                    err.status, err.message, err.type, err.code, headers=err.headers
                )
        if self.limiter is None:
            return None
        buckets = []
        rate = self.user_rate if named else self.service_rate
        if rate is not None:
            buckets.append(Bucket(f"user:{user}:requests", rate))
        if self.zone_rate is not None and zone and engine is not None:
            buckets.append(Bucket(f"zone:{zone}:requests", self.zone_rate))
        if engine is not None and (engine_rate := self.engine_rates.get(engine)) is not None:
            buckets.append(Bucket(f"engine:{engine.value}:requests", engine_rate))
        if not buckets:
            return None
        decision = await self.limiter.take(buckets)
        if decision.allowed:
            return None
        if decision.refused_by == LIMITER_UNAVAILABLE:  # Redis down and fail_open is off
            return error_response(
                503,
                "the rate limiter is unavailable; retry shortly",
                "service_unavailable",
                "limiter_unavailable",
                headers={"Retry-After": "1"},
            )
        scope_name = (decision.refused_by or "user:").split(":", 1)[0]
        scope_name = scope_name if named or scope_name != "user" else "caller"
        self.metrics.safety_event("rate_limit", f"{scope_name}_requests", zone)
        retry = max(1, math.ceil(decision.retry_after_s))
        return error_response(
            429,
            f"rate limit of this {scope_name} reached; retry in {retry} s",
            "rate_limit_error",
            "rate_limited",
            headers={"Retry-After": str(retry)},
        )


def actor(scope: Scope, principal: Principal, hasher: UserHasher) -> tuple[str, bool]:
    """The keyed hash limits and blocks count, and whether it names one person.

    A token is its subject. A service key or an anonymous client (auth off) is the
    X-User-Id it sends; without one, the credential at its client address (after the
    trusted proxy's X-Forwarded-For, which uvicorn applies), hashed as a shared caller.
    """
    if principal.kind == "token":
        return hasher(principal.subject), True
    given = _header(scope, b"x-user-id")
    if given:
        return hasher(given), True
    client = scope.get("client")
    address = client[0] if client else "unknown"
    who = principal.credential_id or principal.subject
    return hasher.shared(f"{principal.kind}:{who}@{address}"), False


def _rate(text: str) -> Rate | None:
    return Rate.parse(text) if text else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text = value.decode("latin-1")
            return text or None
    return None

"""What the router knows about one node: its own traffic there, the engine's signals, health.

Load is counted in request-equivalents: each request in flight counts one, plus its
tokens still to be processed in units of `TOKENS_PER_UNIT` (a 4k-token prompt weighs
five short questions), plus the engine's own queue and running count as of the last
scrape corrected by what this router sent or finished since (so the figure stays fresh
between scrapes and includes other routers' traffic), plus KV-cache pressure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from megacity.config.topology import Node
from megacity.routing.breaker import CircuitBreaker
from megacity.routing.signals import EngineSignals

TOKENS_PER_UNIT = 1024.0  # tokens in flight that weigh as much as one request
KV_PRESSURE_FROM = 0.8  # KV-cache use above which a node counts as busier …
KV_PRESSURE_UNITS = 4.0  # … by up to this many requests when it is full


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """A read-only snapshot of one node's load signals (for dashboards and /readyz)."""

    node: str
    engine: str
    region: str
    healthy: bool
    breaker: str
    server: str  # the engine family its /metrics names showed, or the topology's `server`
    in_flight: int  # requests this router has there now
    tokens_in_flight: int  # their prompt and answer tokens still to be processed (estimate)
    queue: float | None  # the engine's waiting requests, as of the last scrape
    running: float | None  # the engine's running sequences, as of the last scrape
    kv_cache: float | None  # KV-cache use 0..1
    prefix_hit_rate: float | None  # prefix-cache hits per query since the previous scrape
    gpu_utilization: float | None  # 0..1, when the node exports it
    prompt_tokens_per_s: float | None  # engine throughput between the last two scrapes
    generation_tokens_per_s: float | None
    load: float  # the balancer's figure, request-equivalents per unit of weight
    scraped_at: float | None  # wall-clock time of the last scrape


class NodeState:
    """Live state of one node: the router's in-flight work, reported stats, health, breaker."""

    __slots__ = (
        "_prev",
        "breaker",
        "generation_tps",
        "gpu_utilization",
        "health_reason",
        "healthy",
        "in_flight",
        "in_flight_at_scrape",
        "kv_cache_usage",
        "last_error",
        "last_error_at",
        "last_probe",
        "node",
        "prefix_hit_rate",
        "prompt_tps",
        "reported_running",
        "reported_waiting",
        "scraped_at",
        "server",
        "tokens_in_flight",
    )

    def __init__(self, node: Node, breaker: CircuitBreaker) -> None:
        self.node = node
        self.breaker = breaker
        self.in_flight = 0
        self.tokens_in_flight = 0
        self.reported_running = 0.0
        self.reported_waiting = 0.0
        self.in_flight_at_scrape = 0
        self.kv_cache_usage = 0.0
        self.prefix_hit_rate: float | None = None
        self.gpu_utilization: float | None = None
        self.prompt_tps: float | None = None
        self.generation_tps: float | None = None
        self.server: str = node.server
        self.scraped_at: float | None = None
        self._prev: tuple[float, EngineSignals] | None = None
        self.healthy = True  # optimistic until the first probe says otherwise
        self.health_reason = "not probed yet"
        self.last_probe = 0.0
        self.last_error: str | None = None  # the last failed request, for operators
        self.last_error_at: float | None = None  # when (s since epoch)

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def raw_load(self) -> float:
        """Request-equivalents at this node, not divided by its weight."""
        # The engine's own count as of the scrape, plus what this router changed since.
        engine = self.reported_running + self.reported_waiting
        requests = max(float(self.in_flight), engine + self.in_flight - self.in_flight_at_scrape)
        load = requests + self.tokens_in_flight / TOKENS_PER_UNIT
        if self.kv_cache_usage > KV_PRESSURE_FROM:
            excess = (self.kv_cache_usage - KV_PRESSURE_FROM) / (1.0 - KV_PRESSURE_FROM)
            load += KV_PRESSURE_UNITS * min(1.0, excess)
        return load

    @property
    def load(self) -> float:
        """Request-equivalents per unit of weight: what least-loaded balancing compares."""
        return self.raw_load / self.node.weight

    def can_take(self) -> bool:
        return (
            self.healthy and self.in_flight < self.node.max_concurrency and self.breaker.available()
        )

    def alive(self) -> bool:
        return self.healthy and self.breaker.available()

    def note_error(self, kind: str, detail: str) -> None:
        """Remember why the last request to this node failed (shown on the dashboard)."""
        self.last_error = f"{kind}: {detail}"[:300]
        self.last_error_at = time.time()

    def observe(self, signals: EngineSignals, now: float | None = None) -> None:
        """Take one scrape's figures; rates come from the counters of the previous scrape."""
        now = time.time() if now is None else now
        self.server = signals.server if self.node.server == "auto" else self.node.server
        self.reported_running = signals.running or 0.0
        self.reported_waiting = signals.waiting or 0.0
        self.in_flight_at_scrape = self.in_flight
        self.kv_cache_usage = signals.kv_cache or 0.0
        self.gpu_utilization = signals.gpu_utilization
        self.prefix_hit_rate = signals.prefix_hit_rate
        prev = self._prev
        if prev is not None and now > prev[0]:
            then, old = prev
            elapsed = now - then
            self.prompt_tps = _rate(old.prompt_tokens, signals.prompt_tokens, elapsed)
            self.generation_tps = _rate(old.generation_tokens, signals.generation_tokens, elapsed)
            queries = _delta(old.prefix_queries, signals.prefix_queries)
            hits = _delta(old.prefix_hits, signals.prefix_hits)
            if self.prefix_hit_rate is None and queries and hits is not None:
                self.prefix_hit_rate = hits / queries
        self._prev = (now, signals)
        self.scraped_at = now

    def snapshot(self) -> NodeLoad:
        known = self.scraped_at is not None
        return NodeLoad(
            node=self.name,
            engine=self.node.engine.value,
            region=self.node.region,
            healthy=self.healthy,
            breaker=self.breaker.state.name.lower(),
            server=self.server,
            in_flight=self.in_flight,
            tokens_in_flight=self.tokens_in_flight,
            queue=self.reported_waiting if known else None,
            running=self.reported_running if known else None,
            kv_cache=self.kv_cache_usage if known else None,
            prefix_hit_rate=self.prefix_hit_rate,
            gpu_utilization=self.gpu_utilization,
            prompt_tokens_per_s=self.prompt_tps,
            generation_tokens_per_s=self.generation_tps,
            load=self.load,
            scraped_at=self.scraped_at,
        )


class Lease:
    """One reserved slot on a node; give it back with `Balancer.release`.

    It carries the tokens reserved there (prompt still to prefill, answer still to
    decode) and why the policy chose the node (for X-MegaCity-Route and the metrics).
    """

    __slots__ = ("model", "output_tokens", "prompt_tokens", "reason", "state", "ticket")

    def __init__(
        self,
        state: NodeState,
        ticket: int,
        reason: str = "least_loaded",
        prompt_tokens: int = 0,
        output_tokens: int = 0,
        model: str = "",
    ) -> None:
        self.state = state
        self.ticket = ticket  # the breaker's probe ticket (0: not a half-open probe)
        self.reason = reason
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.model = model

    @property
    def name(self) -> str:
        return self.state.name


def _delta(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or new < old:  # a restarted engine resets its counters
        return None
    return new - old


def _rate(old: float | None, new: float | None, seconds: float) -> float | None:
    delta = _delta(old, new)
    return None if delta is None else delta / seconds

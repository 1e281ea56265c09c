"""Prometheus metrics, in a registry owned by the app (no global default registry)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from megacity.observability.rolling import RollingStats
from megacity.routing.node_state import NodeState

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_ROUTE_BUCKETS = (0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.005, 0.01)
_STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


# Per-node gauges, read from the balancer's state at scrape time: (name, help, value).
_NODE_GAUGES: tuple[tuple[str, str, Callable[[NodeState], float]], ...] = (
    (
        "megacity_node_in_flight",
        "Requests this router has in flight per node",
        lambda s: s.in_flight,
    ),
    ("megacity_node_healthy", "1 if the last health probe passed", lambda s: float(s.healthy)),
    (
        "megacity_node_breaker_state",
        "Circuit breaker: 0 closed, 1 half-open, 2 open",
        lambda s: int(s.breaker.state),
    ),
    (
        "megacity_node_reported_waiting",
        "Queue length the node reported",
        lambda s: s.reported_waiting,
    ),
    (
        "megacity_node_reported_running",
        "Running sequences the node reported",
        lambda s: s.reported_running,
    ),
    (
        "megacity_node_kv_cache_usage",
        "KV-cache use the node reported, 0..1",
        lambda s: s.kv_cache_usage,
    ),
    (
        "megacity_node_tokens_in_flight",
        "Prompt and answer tokens this router has in flight per node (estimate)",
        lambda s: s.tokens_in_flight,
    ),
    (
        "megacity_node_load",
        "The balancer's load figure: request-equivalents per unit of weight",
        lambda s: s.load,
    ),
)


class _NodeCollector(Collector):
    """Reads node state at scrape time, so the request path never updates node gauges."""

    def __init__(self, states: Callable[[], Iterable[NodeState]]) -> None:
        self._states = states

    def collect(self) -> Iterator[Metric]:
        families = [
            (GaugeMetricFamily(name, doc, labels=["node"]), value)
            for name, doc, value in _NODE_GAUGES
        ]
        for state in self._states():
            for family, value in families:
                family.add_metric([state.name], value(state))
        yield from (family for family, _ in families)


class Metrics:
    """Request counters/histograms by engine, model, node, zone, status; errors; failovers."""

    def __init__(
        self,
        states: Callable[[], Iterable[NodeState]] = list,
        rolling: RollingStats | None = None,
    ) -> None:
        self.rolling = rolling  # the dashboard's windows count the same events
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["engine", "model", "node", "zone", "status"]
        self._requests = Counter(
            "megacity_requests", "Requests answered", labels, registry=self.registry
        )
        self._latency = Histogram(
            "megacity_request_duration_seconds",
            "Time from request to the last byte of the response",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._route = Histogram(
            "megacity_routing_decision_seconds",
            "Time to choose model and node",
            buckets=_ROUTE_BUCKETS,
            registry=self.registry,
        )
        self._upstream_errors = Counter(
            "megacity_upstream_errors",
            "Upstream failures by node and kind (connect, timeout, disconnect, status)",
            ["node", "kind"],
            registry=self.registry,
        )
        self._failovers = Counter(
            "megacity_failovers",
            "Requests retried on another node",
            ["model", "from_node"],
            registry=self.registry,
        )
        self._region_fallbacks = Counter(
            "megacity_region_fallbacks",
            "Answers served outside the request's region: the next region, or cloud",
            ["engine", "from_region", "to_region"],
            registry=self.registry,
        )
        self._safety = Counter(
            "megacity_safety_events",
            "Safety decisions: check (auth, rate_limit, abuse, firewall, moderation, pii,"
            " consent, identity) and outcome (refused, blocked, flagged, masked …)",
            ["check", "outcome", "zone"],
            registry=self.registry,
        )
        self._routes = Counter(
            "megacity_route_decisions",
            "Node choices by balancing policy and reason (affinity, spill, moved, …)",
            ["policy", "reason"],
            registry=self.registry,
        )
        self._pipeline()
        self.registry.register(_NodeCollector(states))
        self._children: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}
        self._route_children: dict[tuple[str, str], Counter] = {}

    def _pipeline(self) -> None:
        """The multimodal tutor's metrics: per stage, degraded engines, fallbacks."""
        self._stage_seconds = Histogram(
            "megacity_pipeline_stage_seconds",
            "Time of one multimodal pipeline stage (input, extract and each extractor, fuse,"
            " core, accelerator, compose)",
            ["scenario", "stage"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self._stages = Counter(
            "megacity_pipeline_stages",
            "Multimodal pipeline stages by outcome (ok, degraded, timeout, failed, cancelled)",
            ["scenario", "stage", "outcome"],
            registry=self.registry,
        )
        self._degraded = Counter(
            "megacity_pipeline_degraded",
            "Optional engines that failed or missed their deadline (the answer went on)",
            ["scenario", "engine", "reason"],
            registry=self.registry,
        )
        self._fallbacks = Counter(
            "megacity_pipeline_fallbacks",
            "LLM steps replaced by the deterministic composer (invalid, timeout, failed, moderated)",
            ["scenario", "step", "reason"],
            registry=self.registry,
        )

    def observe_request(self, labels: tuple[str, str, str, str, str], seconds: float) -> None:
        """Count one answered request; label children are cached (they cost µs to look up)."""
        pair = self._children.get(labels)
        if pair is None:
            pair = (self._requests.labels(*labels), self._latency.labels(*labels))
            self._children[labels] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def observe_route(self, seconds: float) -> None:
        self._route.observe(seconds)

    def route_decision(self, policy: str, reason: str) -> None:
        """Count one node choice (children cached: this runs on every request)."""
        child = self._route_children.get((policy, reason))
        if child is None:
            child = self._routes.labels(policy, reason)
            self._route_children[(policy, reason)] = child
        child.inc()

    def upstream_error(self, node: str, kind: str) -> None:
        self._upstream_errors.labels(node, kind).inc()
        if self.rolling is not None:
            self.rolling.event(("upstream_error", node, kind))

    def failover(self, model: str, from_node: str) -> None:
        self._failovers.labels(model, from_node).inc()
        if self.rolling is not None:
            self.rolling.event(("failover", model, from_node))

    def region_fallback(self, engine: str, from_region: str, to_region: str) -> None:
        self._region_fallbacks.labels(engine, from_region, to_region).inc()

    def safety_event(self, check: str, outcome: str, zone: str = "") -> None:
        """Count one safety decision; never labelled by user (ids stay out of metrics)."""
        self._safety.labels(check, outcome, zone).inc()
        if self.rolling is not None:
            self.rolling.event(("safety", check, outcome, zone))

    def pipeline_stage(self, scenario: str, stage: str, outcome: str, seconds: float) -> None:
        """One multimodal pipeline stage finished (or was cut) after `seconds`."""
        self._stage_seconds.labels(scenario, stage).observe(seconds)
        self._stages.labels(scenario, stage, outcome).inc()

    def pipeline_degraded(self, scenario: str, engine: str, reason: str) -> None:
        self._degraded.labels(scenario, engine, reason).inc()

    def pipeline_fallback(self, scenario: str, step: str, reason: str) -> None:
        self._fallbacks.labels(scenario, step, reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

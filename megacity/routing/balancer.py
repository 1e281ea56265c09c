"""Node balancing: least-loaded healthy node, request's region first, cloud last, bounded waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from megacity.config.topology import Node, Topology
from megacity.errors import ServiceUnavailable
from megacity.routing.breaker import CircuitBreaker


class NodeState:
    """Live state of one node: the router's in-flight count, reported stats, health, breaker."""

    __slots__ = (
        "breaker",
        "health_reason",
        "healthy",
        "in_flight",
        "kv_cache_usage",
        "last_probe",
        "node",
        "reported_running",
        "reported_waiting",
    )

    def __init__(self, node: Node, breaker: CircuitBreaker) -> None:
        self.node = node
        self.breaker = breaker
        self.in_flight = 0
        self.reported_running = 0.0
        self.reported_waiting = 0.0
        self.kv_cache_usage = 0.0
        self.healthy = True  # optimistic until the first probe says otherwise
        self.health_reason = "not probed yet"
        self.last_probe = 0.0

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def load(self) -> float:
        """In-flight requests of this router plus the node's own queue, per unit of weight."""
        return (self.in_flight + self.reported_waiting) / self.node.weight

    def can_take(self) -> bool:
        return (
            self.healthy and self.in_flight < self.node.max_concurrency and self.breaker.available()
        )

    def alive(self) -> bool:
        return self.healthy and self.breaker.available()


class Lease:
    """One reserved slot on a node; give it back with `Balancer.release`."""

    __slots__ = ("state", "ticket")

    def __init__(self, state: NodeState, ticket: int) -> None:
        self.state = state
        self.ticket = ticket  # the breaker's probe ticket (0: not a half-open probe)

    @property
    def name(self) -> str:
        return self.state.name


class Balancer:
    """Picks a node for a model; callers must `release` every node they `acquire`."""

    def __init__(
        self,
        topology: Topology,
        *,
        default_region: str | None = None,
        breaker_failures: int = 3,
        breaker_reset_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nodes: dict[str, NodeState] = {
            n.name: NodeState(n, CircuitBreaker(breaker_failures, breaker_reset_s, clock))
            for n in topology.nodes
        }
        self._regions = [r.name for r in topology.regions]
        if default_region is not None and default_region not in self._regions:
            raise ValueError(f"unknown default region {default_region!r}")
        self._default_region = default_region or self._regions[0]
        self._groups: dict[tuple[str, str], list[list[NodeState]]] = {}
        for model in topology.models:
            for region in self._regions:
                self._groups[(model.name, region)] = self._preference(model.name, region)
        self._turn = 0
        self._waiters = 0
        self._released = asyncio.Event()

    def _preference(self, model: str, region: str) -> list[list[NodeState]]:
        """Candidate groups in order: local nodes of `region`, other regions in order, cloud."""
        serving = [s for s in self.nodes.values() if model in s.node.models]
        order = [region] + [r for r in self._regions if r != region]
        groups = [
            [s for s in serving if s.node.kind == "local" and s.node.region == r] for r in order
        ]
        groups.append([s for s in serving if s.node.kind == "cloud"])
        return [g for g in groups if g]

    def home_region(self, region: str | None) -> str:
        """The region a request is routed from: its own if known, else this router's."""
        return region if region in self._regions else self._default_region

    def candidates(self, model: str, region: str | None = None) -> list[list[NodeState]]:
        return self._groups.get((model, self.home_region(region)), [])

    def pick(
        self, model: str, region: str | None = None, exclude: Iterable[str] = ()
    ) -> NodeState | None:
        """The least-loaded node that can take a request now, or None (no side effects)."""
        skip = set(exclude) if exclude else None
        for group in self.candidates(model, region):
            best: NodeState | None = None
            ties = 0
            for state in group:
                if (skip and state.name in skip) or not state.can_take():
                    continue
                if best is None or state.load < best.load:
                    best, ties = state, 1
                elif state.load == best.load:
                    ties += 1
                    # Rotate among equally loaded nodes so idle pairs share the work.
                    if (self._turn % ties) == 0:
                        best = state
            if best is not None:
                self._turn += 1
                return best
        return None

    def any_alive(self, model: str, exclude: Iterable[str] = ()) -> bool:
        skip = set(exclude)
        return any(s.alive() and s.name not in skip for g in self.candidates(model) for s in g)

    async def acquire(
        self,
        model: str,
        region: str | None = None,
        *,
        exclude: Iterable[str] = (),
        timeout_s: float = 2.0,
        retry_after_s: int = 1,
    ) -> Lease:
        """Reserve a slot on the best node; wait up to `timeout_s` when all are full, then 503."""
        exclude = tuple(exclude)
        state = self.pick(model, region, exclude)
        if state is None:
            state = await self._wait_for_slot(model, region, exclude, timeout_s, retry_after_s)
        state.in_flight += 1
        return Lease(state, state.breaker.on_send())

    async def _wait_for_slot(
        self,
        model: str,
        region: str | None,
        exclude: tuple[str, ...],
        timeout_s: float,
        retry_after_s: int,
    ) -> NodeState:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if not self.any_alive(model, exclude):
                raise ServiceUnavailable(
                    f"no healthy node serves model {model!r}",
                    code="no_healthy_node",
                    retry_after_s=retry_after_s,
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ServiceUnavailable(
                    f"every node serving {model!r} is at its max_concurrency",
                    code="no_capacity",
                    retry_after_s=retry_after_s,
                )
            event = self._released
            self._waiters += 1
            try:
                await asyncio.wait_for(event.wait(), min(remaining, 0.25))
            except TimeoutError:
                pass  # re-check health and capacity: a node may have come back
            finally:
                self._waiters -= 1
            state = self.pick(model, region, exclude)
            if state is not None:
                return state

    def release(self, lease: Lease, outcome: bool | None) -> None:
        """Free the slot; outcome True/False feeds the breaker, None means no verdict."""
        state = lease.state
        state.in_flight -= 1
        if outcome is True:
            state.breaker.on_success()
        elif outcome is False:
            state.breaker.on_failure()
        else:
            state.breaker.on_abandon(lease.ticket)
        if self._waiters:
            self._released.set()
            self._released = asyncio.Event()

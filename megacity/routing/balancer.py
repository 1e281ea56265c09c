"""Node balancing: the request's region first, cloud last, the zone's policy within a group.

The balancer owns the per-node state and the preference groups; which node of a group
takes a request is the zone's policy (routing.policy). Every LLM request reserves its
tokens on the node it is sent to (routing.tokens), and the same figures are readable
by anyone through `node_loads()`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from megacity.config.topology import Topology
from megacity.errors import ServiceUnavailable
from megacity.routing.breaker import CircuitBreaker
from megacity.routing.node_state import Lease, NodeLoad, NodeState
from megacity.routing.policy import Choice, LeastLoaded, Policy, RouteHint, build_policy
from megacity.routing.tokens import TokenLedger, Usage

__all__ = ["Balancer", "Lease", "NodeLoad", "NodeState", "RouteHint"]


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
        self._default_policy: Policy = LeastLoaded()  # engines without zones' policies
        self._topology_policy: Policy = build_policy(topology.routing)
        self._zone_policies: dict[str, Policy] = {
            name: build_policy(zone.routing)
            for name, zone in topology.zones.items()
            if zone.routing is not None
        }
        self.tokens = TokenLedger()
        self._waiters = 0
        self._released = asyncio.Event()

    def policy(self, zone: str | None) -> Policy:
        """The LLM policy of a zone (its own `routing`, else the topology's)."""
        if zone is None:
            return self._topology_policy
        return self._zone_policies.get(zone, self._topology_policy)

    def node_loads(self) -> list[NodeLoad]:
        """Every node's load signals now: the read API for dashboards and operators."""
        return [state.snapshot() for state in self.nodes.values()]

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
        self,
        model: str,
        region: str | None = None,
        exclude: Iterable[str] = (),
        hint: RouteHint | None = None,
        *,
        preview: bool = False,
    ) -> NodeState | None:
        """The node a request would go to now, or None (no side effects but rotation).

        `preview` (the routing explainer) leaves the tie rotation where it is.
        """
        choice = self.choose(model, region, exclude, hint, preview=preview)
        return None if choice is None else choice.state

    def choose(
        self,
        model: str,
        region: str | None = None,
        exclude: Iterable[str] = (),
        hint: RouteHint | None = None,
        *,
        preview: bool = False,
    ) -> Choice | None:
        """The first preference group with a node that can take the request decides."""
        skip = set(exclude) if exclude else None
        policy = self._default_policy if hint is None else self.policy(hint.zone)
        for group in self.candidates(model, region):
            able = [s for s in group if s.can_take() and not (skip and s.name in skip)]
            if able:
                return policy.choose(able, group, hint, preview=preview)
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
        hint: RouteHint | None = None,
    ) -> Lease:
        """Reserve a slot on the best node; wait up to `timeout_s` when all are full, then 503."""
        exclude = tuple(exclude)
        choice = self.choose(model, region, exclude, hint)
        if choice is None:
            choice = await self._wait_for_slot(
                model, region, exclude, timeout_s, retry_after_s, hint
            )
        state = choice.state
        state.in_flight += 1
        prompt = output = 0
        if hint is not None:
            prompt, output = hint.prompt_tokens, hint.output_tokens
            state.tokens_in_flight += prompt + output
        return Lease(state, state.breaker.on_send(), choice.reason, prompt, output, model)

    def prefilled(self, lease: Lease) -> None:
        """The node started answering: the prompt's tokens are no longer waiting there."""
        lease.state.tokens_in_flight -= lease.prompt_tokens
        lease.prompt_tokens = 0

    def settle(self, lease: Lease, estimated_prompt: int, usage: Usage) -> None:
        """Learn from an answer's usage (the reservation itself ends with `release`)."""
        self.tokens.settle(lease.model, estimated_prompt, usage)

    async def _wait_for_slot(
        self,
        model: str,
        region: str | None,
        exclude: tuple[str, ...],
        timeout_s: float,
        retry_after_s: int,
        hint: RouteHint | None,
    ) -> Choice:
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
            choice = self.choose(model, region, exclude, hint)
            if choice is not None:
                return choice

    def release(self, lease: Lease, outcome: bool | None) -> None:
        """Free the slot; outcome True/False feeds the breaker, None means no verdict."""
        state = lease.state
        state.in_flight -= 1
        state.tokens_in_flight -= lease.prompt_tokens + lease.output_tokens
        lease.prompt_tokens = lease.output_tokens = 0
        if outcome is True:
            state.breaker.on_success()
        elif outcome is False:
            state.breaker.on_failure()
        else:
            state.breaker.on_abandon(lease.ticket)
        if self._waiters:
            self._released.set()
            self._released = asyncio.Event()

"""Balancing policies: which node of one preference group takes a request.

Each policy is a small class behind one method, `choose(group, hint)`, given the nodes
that can take a request now (healthy, breaker closed, below max_concurrency, not already
tried). The balancer walks the preference groups (the request's region, the other
regions, cloud) and asks the zone's policy within each.

- `LeastLoaded`: the lowest load per unit of weight; ties rotate.
- `RoundRobin`: the next node in turn (a baseline for the routing benchmark).
- `CacheAware`: a conversation goes back to the node that holds its KV cache, by
  consistent hashing of its key with bounded loads (Mirrokni et al., 2018): a node whose
  load is at or above `load_factor` × its weighted share of the group's load, plus one
  request of slack (so that a lightly used cluster keeps its conversations in place), is
  passed over for the next one on the ring; when every node is over, least-loaded decides.
  A conversation's first turn (keyed by its own text, with no answer yet) has nothing
  cached to go back to: least-loaded places it, and its later turns follow the ring. A node
  that goes down hands its conversations to their next node on the ring, and they come
  back when it does — every router replica agrees without sharing any state.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from megacity.config.topology import RoutingPolicy
from megacity.routing.node_state import NodeState

# Reasons, as X-MegaCity-Route and megacity_route_decisions_total show them.
LEAST_LOADED = "least_loaded"
ROUND_ROBIN = "round_robin"
AFFINITY = "affinity"  # the conversation's own node
SPILL = "spill"  # its node was above the load bound: the next one on the ring
MOVED = "moved"  # its node is down or full: the next one on the ring
OVERLOADED = "overloaded"  # every node was above the bound: least loaded
NO_KEY = "no_key"  # nothing identifies a conversation: least loaded
NEW_CONVERSATION = "new_conversation"  # its first turn: nothing of it is cached anywhere


@dataclass(frozen=True, slots=True)
class RouteHint:
    """What a request tells the balancer beyond its model: zone, conversation, tokens."""

    zone: str | None = None
    key: bytes | None = None  # identifies the conversation (see routing.conversation)
    opening: bool = False  # the conversation's first turn, keyed by its own text
    prompt_tokens: int = 0  # estimated prompt tokens to prefill
    output_tokens: int = 0  # expected answer tokens


@dataclass(frozen=True, slots=True)
class Choice:
    state: NodeState
    reason: str


class Policy(Protocol):
    name: str

    def choose(
        self,
        group: Sequence[NodeState],
        members: Sequence[NodeState],
        hint: RouteHint | None,
        *,
        preview: bool = False,
    ) -> Choice | None:
        """A node of `group` (those of `members` that can take the request now), or None.

        `preview`: only say which node; leave any rotation state as it is.
        """
        ...


class LeastLoaded:
    """The node with the lowest load per unit of weight; equally loaded nodes take turns."""

    name = LEAST_LOADED

    def __init__(self) -> None:
        self._turn = 0

    def choose(
        self,
        group: Sequence[NodeState],
        members: Sequence[NodeState],
        hint: RouteHint | None,
        *,
        preview: bool = False,
    ) -> Choice | None:
        state = self.pick(group, advance=not preview)
        return None if state is None else Choice(state, LEAST_LOADED)

    def pick(self, group: Sequence[NodeState], *, advance: bool = True) -> NodeState | None:
        best: NodeState | None = None
        best_load = 0.0
        ties = 0
        for state in group:
            load = state.load
            if best is None or load < best_load:
                best, best_load, ties = state, load, 1
            elif load == best_load:
                ties += 1
                # Rotate among equally loaded nodes so idle pairs share the work.
                if (self._turn % ties) == 0:
                    best = state
        if best is not None and advance:
            self._turn += 1
        return best


class RoundRobin:
    """Each node in turn, whatever its load."""

    name = ROUND_ROBIN

    def __init__(self) -> None:
        self._turn = 0

    def choose(
        self,
        group: Sequence[NodeState],
        members: Sequence[NodeState],
        hint: RouteHint | None,
        *,
        preview: bool = False,
    ) -> Choice | None:
        if not group:
            return None
        turn = self._turn + 1
        if not preview:
            self._turn = turn
        return Choice(group[turn % len(group)], ROUND_ROBIN)


class HashRing:
    """Consistent-hash ring over named members, `points` ring positions per unit of weight."""

    def __init__(self, members: Sequence[tuple[str, float]], points: int) -> None:
        ring: list[tuple[int, str]] = []
        for name, weight in members:
            for i in range(max(1, round(points * weight))):
                ring.append((_hash(f"{name}#{i}".encode()), name))
        ring.sort()
        self._hashes = [h for h, _ in ring]
        self._names = [n for _, n in ring]
        self._size = len({n for _, n in ring})

    def walk(self, key: bytes) -> Iterator[str]:
        """Members in ring order from the key's position, each once."""
        if not self._names:
            return
        start = bisect.bisect(self._hashes, _hash(key))
        seen: set[str] = set()
        n = len(self._names)
        for i in range(n):
            name = self._names[(start + i) % n]
            if name not in seen:
                seen.add(name)
                yield name
                if len(seen) == self._size:
                    return


class CacheAware:
    """Consistent hashing with bounded loads over each preference group's nodes."""

    name = "cache_aware"

    def __init__(self, load_factor: float = 2.0, points: int = 100) -> None:
        self.load_factor = load_factor
        self.points = points
        self._fallback = LeastLoaded()
        self._rings: dict[tuple[str, ...], HashRing] = {}

    def ring(self, members: Sequence[NodeState]) -> HashRing:
        """The ring of a group's full membership (down nodes included, so keys stay put)."""
        names = tuple(s.name for s in members)
        ring = self._rings.get(names)
        if ring is None:
            ring = HashRing([(s.name, s.node.weight) for s in members], self.points)
            self._rings[names] = ring
        return ring

    def choose(
        self,
        group: Sequence[NodeState],
        members: Sequence[NodeState],
        hint: RouteHint | None,
        *,
        preview: bool = False,
    ) -> Choice | None:
        if not group:
            return None
        if hint is None or hint.key is None:
            return _least(self._fallback, group, NO_KEY, preview)
        if hint.opening:
            # Nothing of a new conversation is cached anywhere but the strategy prompt,
            # which every node serving the zone already holds: balance it by load. Its
            # next turns go to its place on the ring.
            return _least(self._fallback, group, NEW_CONVERSATION, preview)
        by_name = {s.name: s for s in group}
        total = sum(s.raw_load for s in group)
        weight = sum(s.node.weight for s in group)
        passed_over = False
        first = True
        for name in self.ring(members or group).walk(hint.key):
            state = by_name.get(name)
            if state is None:  # down, full or already tried: its keys move on
                first = False
                continue
            share = total * state.node.weight / weight
            if state.raw_load < self.load_factor * share + 1.0:
                if first:
                    return Choice(state, AFFINITY)
                return Choice(state, SPILL if passed_over else MOVED)
            passed_over = True
            first = False
        return _least(self._fallback, group, OVERLOADED, preview)


def _least(
    policy: LeastLoaded, group: Sequence[NodeState], reason: str, preview: bool = False
) -> Choice | None:
    state = policy.pick(group, advance=not preview)
    return None if state is None else Choice(state, reason)


def build_policy(config: RoutingPolicy) -> LeastLoaded | RoundRobin | CacheAware:
    """The policy object a zone's `routing` block names."""
    if config.policy == "cache_aware":
        return CacheAware(config.load_factor, config.virtual_nodes)
    if config.policy == "round_robin":
        return RoundRobin()
    return LeastLoaded()


def _hash(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")

"""Region-level failover, seen: the requests a node outside their region served.

The balancer already prefers the request's region, then the other regions in the
topology's order, then cloud nodes (balancer.py). This module makes that visible: each
answer served outside its home region counts in `megacity_region_fallbacks_total`
(engine, from, to — "cloud" for cloud nodes) and leaves one log line naming both
regions and the node. And because a region that went down all at once takes a
moment to be noticed by the health probes, a node that refused the connection is
marked down at once: `refused(lease)` (the next probe that passes brings it back).
"""

from __future__ import annotations

import logging

from megacity.observability.metrics import Metrics
from megacity.routing.balancer import Balancer, Lease

log = logging.getLogger("megacity.regions")

# Connection refusals retried beyond the attempts a request has: nothing reached the
# node, so another try costs nothing and harms nothing (bounded, for a dead topology).
MAX_REFUSED = 4


class RegionWatch:
    """Counts and logs the answers served outside the request's region."""

    def __init__(self, balancer: Balancer, metrics: Metrics) -> None:
        self._balancer = balancer
        self._metrics = metrics

    def served(self, engine: str, region: str | None, lease: Lease, request_id: str) -> None:
        """`lease`'s node answered a request of `region` (None: this router's region)."""
        home = self._balancer.home_region(region)
        node = lease.state.node
        to = "cloud" if node.kind == "cloud" else node.region
        if to == home:
            return
        self._metrics.region_fallback(engine, home, to)
        log.info(
            "served outside its region",
            extra={
                "request_id": request_id,
                "engine": engine,
                "node": node.name,
                "region": home,
                "served_from": to,
                "node_region": node.region,
            },
        )


def refused(lease: Lease) -> None:
    """The node refused the connection: down until its next passing health probe."""
    state = lease.state
    if state.healthy:
        log.warning(
            "node %s refused a connection; marked down until it answers a probe", state.name
        )
    state.healthy = False
    state.health_reason = "refused a connection"

"""One node as the dashboard shows it: the one adapter from routing state to a JSON view.

Everything the dashboard knows about a node goes through `node_view`, so a new load
signal (running requests, KV-cache use, tokens in flight, GPU utilisation …) reaches the
page by being added here; fields a node does not export stay None and are not shown.
"""

from __future__ import annotations

from typing import Any, Protocol

from megacity.routing.node_state import NodeState


class InProcessEngine(Protocol):
    """What an in-process engine (url: local) tells about itself."""

    @property
    def failure(self) -> str | None: ...


def node_view(state: NodeState, engine: InProcessEngine | None = None) -> dict[str, Any]:
    """Health, breaker (state, consecutive failures, last error), load and identity of a node."""
    node = state.node
    load = state.snapshot()
    failure = engine.failure if engine is not None else None
    view: dict[str, Any] = {
        "name": node.name,
        "engine": node.engine.value,
        "region": node.region,
        "kind": node.kind,
        "url": node.url,
        "models": list(node.models),
        "max_concurrency": node.max_concurrency,
        "weight": node.weight,
        "healthy": state.healthy and failure is None,
        "health_reason": failure or state.health_reason,
        "last_probe": state.last_probe or None,
        "breaker": state.breaker.state.name.lower(),
        "consecutive_failures": state.breaker.failures,
        "last_error": state.last_error,
        "last_error_at": state.last_error_at,
        "in_flight": state.in_flight,
        "running": state.reported_running,
        "waiting": state.reported_waiting,
        # LLM servers export it; other engines never do, so 0 there means "not reported".
        "kv_cache": load.kv_cache if load.kv_cache or node.engine == "llm" else None,
        "gpu_utilization": load.gpu_utilization,
        "tokens_in_flight": load.tokens_in_flight,
        "prefix_hit_rate": load.prefix_hit_rate,
        "load": load.load,
        "server": load.server,
        "scraped_at": load.scraped_at,
        "in_process": node.in_process,
    }
    if engine is not None:
        view["running"] = float(getattr(engine, "running", view["running"]))
        view["waiting"] = float(getattr(engine, "waiting", view["waiting"]))
    return view

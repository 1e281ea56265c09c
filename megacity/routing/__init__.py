"""Routing decisions: zone policy, tiers, model registry, node balancer, failover."""

from megacity.routing.balancer import Balancer, NodeState
from megacity.routing.breaker import BreakerState, CircuitBreaker
from megacity.routing.classifier import Classification, classify
from megacity.routing.context import RequestContext
from megacity.routing.registry import ModelRegistry, ResolvedModel
from megacity.routing.selector import AUTO, Decision, ModelSelector, PromptInfo

__all__ = [
    "AUTO",
    "Balancer",
    "BreakerState",
    "CircuitBreaker",
    "Classification",
    "Decision",
    "ModelRegistry",
    "ModelSelector",
    "NodeState",
    "PromptInfo",
    "RequestContext",
    "ResolvedModel",
    "classify",
]

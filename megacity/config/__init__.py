"""Configuration: the settings object and the topology file."""

from megacity.config.settings import Settings
from megacity.config.topology import (
    LOCALES,
    TIERS,
    Engine,
    Model,
    Node,
    Tier,
    Topology,
    TopologyError,
    Zone,
    load_topology,
    parse_topology,
)

__all__ = [
    "LOCALES",
    "TIERS",
    "Engine",
    "Model",
    "Node",
    "Settings",
    "Tier",
    "Topology",
    "TopologyError",
    "Zone",
    "load_topology",
    "parse_topology",
]

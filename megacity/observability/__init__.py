"""Metrics and structured logs."""

from megacity.observability.logging import configure_logging
from megacity.observability.metrics import Metrics

__all__ = ["Metrics", "configure_logging"]

"""Circuit breaker per node: open after consecutive failures, one half-open probe, close on success."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum


class BreakerState(IntEnum):
    """Numeric so the state can be exported as a Prometheus gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Counts consecutive failures of one node; time comes from an injectable clock (seconds)."""

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._open = False
        self._probe_in_flight = False
        self._probe_ticket = 0

    @property
    def state(self) -> BreakerState:
        if not self._open:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def failures(self) -> int:
        """Consecutive failures since the last success."""
        return self._failures

    def available(self) -> bool:
        """Whether a request may be sent now (closed, or half-open with no probe out)."""
        if not self._open:
            return True
        return self.state is BreakerState.HALF_OPEN and not self._probe_in_flight

    def on_send(self) -> int:
        """Call when a request is sent; returns its probe ticket (0: not the half-open probe)."""
        if not self._open:
            return 0
        self._probe_in_flight = True
        self._probe_ticket += 1
        return self._probe_ticket

    def on_success(self) -> None:
        self._failures = 0
        self._open = False
        self._probe_in_flight = False

    def on_failure(self) -> None:
        self._failures += 1
        self._probe_in_flight = False
        if self._open or self._failures >= self.failure_threshold:
            self._open = True
            self._opened_at = self._clock()

    def on_abandon(self, ticket: int = 0) -> None:
        """A request ended without a verdict (the client went away); frees the probe if it was it."""
        if ticket and ticket == self._probe_ticket:
            self._probe_in_flight = False

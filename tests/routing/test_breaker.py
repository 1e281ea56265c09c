"""Circuit breaker with a fake clock: closed → open → half-open (one probe) → closed/open."""

from __future__ import annotations

import pytest

from megacity.routing.breaker import BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _breaker(clock: FakeClock, failures: int = 3, reset_s: float = 5.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=failures, reset_timeout_s=reset_s, clock=clock)


def _open(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.on_send()
        breaker.on_failure()
    assert breaker.state is BreakerState.OPEN


def test_starts_closed(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.available()


@pytest.mark.parametrize("threshold", [1, 2, 3, 5])
def test_opens_after_n_consecutive_failures(clock: FakeClock, threshold: int) -> None:
    breaker = _breaker(clock, failures=threshold)
    for _ in range(threshold - 1):
        breaker.on_failure()
        assert breaker.state is BreakerState.CLOSED
        assert breaker.available()
    breaker.on_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.available()


@pytest.mark.parametrize(
    ("events", "state"),
    [
        ("fff", BreakerState.OPEN),
        ("ffsff", BreakerState.CLOSED),  # a success resets the count
        ("ffsfff", BreakerState.OPEN),
        ("fsfsfsf", BreakerState.CLOSED),
        ("ffaf", BreakerState.OPEN),  # an abandoned request is no verdict: the count stays
        ("sss", BreakerState.CLOSED),
    ],
)
def test_consecutive_failures_table(clock: FakeClock, events: str, state: BreakerState) -> None:
    breaker = _breaker(clock, failures=3)
    for event in events:
        breaker.on_send()
        {"f": breaker.on_failure, "s": breaker.on_success, "a": breaker.on_abandon}[event]()
    assert breaker.state is state


def test_open_blocks_until_the_reset_timeout(clock: FakeClock) -> None:
    breaker = _breaker(clock, reset_s=5.0)
    _open(breaker)
    clock.advance(4.99)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.available()
    clock.advance(0.01)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.available()


def test_half_open_allows_exactly_one_probe(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    assert breaker.available()
    breaker.on_send()  # the probe
    assert not breaker.available()
    assert breaker.state is BreakerState.HALF_OPEN
    clock.advance(60.0)  # still no verdict: still one probe only
    assert not breaker.available()


def test_probe_success_closes(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    breaker.on_send()
    breaker.on_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.available()
    # the failure count starts again from zero
    breaker.on_failure()
    breaker.on_failure()
    assert breaker.state is BreakerState.CLOSED


def test_probe_failure_reopens_with_a_fresh_timer(clock: FakeClock) -> None:
    breaker = _breaker(clock, reset_s=5.0)
    _open(breaker)
    clock.advance(7.0)
    breaker.on_send()
    breaker.on_failure()  # one failure is enough in half-open state
    assert breaker.state is BreakerState.OPEN
    assert not breaker.available()
    clock.advance(4.9)  # 11.9 s after the first opening, 4.9 s after the second
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.available()


def test_abandon_frees_the_probe(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    ticket = breaker.on_send()
    assert ticket > 0  # this request is the probe
    assert not breaker.available()
    breaker.on_abandon(ticket)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.available()


def test_send_while_closed_is_not_a_probe(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    breaker.on_send()
    breaker.on_send()
    assert breaker.available()


def test_state_values_are_gauge_numbers() -> None:
    assert [int(s) for s in (BreakerState.CLOSED, BreakerState.HALF_OPEN, BreakerState.OPEN)] == [
        0,
        1,
        2,
    ]


def test_stale_request_abandon_does_not_free_the_probe(clock: FakeClock) -> None:
    breaker = _breaker(clock, failures=3)
    breaker.on_send()  # a long request (e.g. a stream), sent while closed
    _open(breaker)  # other requests fail meanwhile
    clock.advance(5.0)
    breaker.on_send()  # the one half-open probe
    assert not breaker.available()
    breaker.on_abandon()  # the old stream's client goes away: no verdict on the node
    assert not breaker.available()  # the probe is still out

"""The circuit breaker's cycle, on a clock the test moves."""

from __future__ import annotations

from openfoundry.routing.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_on_consecutive_failures_then_probes_and_closes() -> None:
    clock = Clock()
    breaker = Breaker(failures=3, rate=1.0, window=100, cooldown=5.0, probes=1, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 4.9
    assert breaker.state == "open"
    clock.now += 0.2
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # one probe at a time
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def test_a_failed_probe_opens_it_again_for_a_full_cooldown() -> None:
    clock = Clock()
    breaker = Breaker(failures=1, cooldown=5.0, clock=clock)
    breaker.failure()
    clock.now += 5.0
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "open"
    clock.now += 4.0
    assert breaker.state == "open"
    clock.now += 1.0
    assert breaker.state == "half_open"


def test_opens_on_failure_rate_over_the_window() -> None:
    breaker = Breaker(failures=100, rate=0.5, window=10, clock=Clock())
    for index in range(9):
        (breaker.failure if index % 2 else breaker.success)()
    assert breaker.state == "closed"  # the window is not full yet
    breaker.failure()
    assert breaker.error_rate == 0.5
    assert breaker.state == "open"

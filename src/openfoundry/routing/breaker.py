"""A circuit breaker per backend: stop sending calls to a host that keeps failing, probe it later.

closed -> open on `failures` consecutive failures, or when at least `rate` of the last `window` calls
failed (once `window` calls were seen); open -> half-open after `cooldown` seconds; half-open admits
`probes` calls at a time: a success closes the breaker, a failure opens it again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class Breaker:
    __slots__ = (
        "_clock",
        "_consecutive",
        "_opened_at",
        "_outcomes",
        "_probing",
        "_state",
        "cooldown",
        "failures",
        "probes",
        "rate",
    )

    def __init__(
        self,
        failures: int = 5,
        rate: float = 0.5,
        window: int = 20,
        cooldown: float = 10.0,
        probes: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.rate = rate
        self.cooldown = cooldown
        self.probes = probes
        self._clock = clock
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._consecutive = 0
        self._state: State = "closed"
        self._opened_at = 0.0
        self._probing = 0

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown:
            self._state = "half_open"
            self._probing = 0
        return self._state

    @property
    def error_rate(self) -> float:
        return self._outcomes.count(False) / len(self._outcomes) if self._outcomes else 0.0

    def allow(self) -> bool:
        """Whether a call may go to this backend now (a half-open breaker counts the probe)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and self._probing < self.probes:
            self._probing += 1
            return True
        return False

    def success(self) -> None:
        self._outcomes.append(True)
        self._consecutive = 0
        if self._state == "half_open":
            self._state = "closed"
            self._outcomes.clear()

    def failure(self) -> None:
        self._outcomes.append(False)
        self._consecutive += 1
        if self._state == "half_open" or self._tripped():
            self._state = "open"
            self._opened_at = self._clock()

    def _tripped(self) -> bool:
        if self._consecutive >= self.failures:
            return True
        window = self._outcomes.maxlen or 0
        return len(self._outcomes) >= window and self.error_rate >= self.rate

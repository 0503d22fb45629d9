"""Which backend serves a call: live state per backend, and the order a strategy gives.

Backends are tried by priority (lower first); within a priority the deployment's strategy orders
them: `weighted` (random by weight), `least-inflight`, `latency` (EWMA of recent latency) or `cost`
(cheapest price first). Backends whose breaker is open, or that asked us to wait (Retry-After), are
left out while others remain.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from openfoundry.deployments import Backend, Deployment
from openfoundry.routing.breaker import Breaker

_EWMA_WEIGHT = 0.2


@dataclass(slots=True)
class BackendState:
    backend: Backend
    breaker: Breaker
    inflight: int = 0
    latency: float | None = None
    """EWMA of recent successful call latencies, in seconds."""
    resting_until: float = 0.0
    """Monotonic time before which the upstream asked not to be called (Retry-After)."""
    price: float = 0.0
    calls: int = 0

    def observe(self, seconds: float) -> None:
        self.latency = seconds if self.latency is None else self.latency + _EWMA_WEIGHT * (seconds - self.latency)

    def view(self) -> dict[str, Any]:
        return {
            "provider": self.backend.provider,
            "upstream_model": self.backend.upstream_model,
            "priority": self.backend.priority,
            "state": self.breaker.state,
            "in_flight": self.inflight,
            "latency_ms": None if self.latency is None else round(self.latency * 1000, 3),
            "error_rate": round(self.breaker.error_rate, 4),
            "calls": self.calls,
        }


class Router:
    def __init__(self, rng: random.Random | None = None, clock: Any = time.monotonic) -> None:
        self._rng = rng or random.Random()
        self._clock = clock
        self._states: dict[tuple[str, int], BackendState] = {}

    def states(self, deployment: Deployment) -> list[BackendState]:
        """The live state of each backend, created on first use and kept while the backend is unchanged."""
        found = []
        for index, backend in enumerate(deployment.backends):
            key = (deployment.name, index)
            state = self._states.get(key)
            if state is None or state.backend != backend:
                state = self._states[key] = self._new_state(deployment, backend)
            found.append(state)
        return found

    def _new_state(self, deployment: Deployment, backend: Backend) -> BackendState:
        policy = deployment.settings.breaker
        breaker = Breaker(policy.failures, policy.rate, policy.window, policy.cooldown, policy.probes, self._clock)
        pricing = deployment.card.pricing
        price = backend.price if backend.price is not None else (pricing.input or 0) + (pricing.output or 0)
        return BackendState(backend, breaker, price=price)

    def order(self, deployment: Deployment) -> list[BackendState]:
        """Backends in the order to try them; those open or resting come last, as a last resort."""
        states = self.states(deployment)
        if len(states) == 1:
            return states
        now = self._clock()
        ready = [s for s in states if s.resting_until <= now and s.breaker.state != "open"]
        held = [s for s in states if s not in ready]
        return self._by_strategy(deployment, ready) + held

    def _by_strategy(self, deployment: Deployment, states: list[BackendState]) -> list[BackendState]:
        strategy = deployment.settings.strategy
        ordered: list[BackendState] = []
        for priority in sorted({s.backend.priority for s in states}):
            group = [s for s in states if s.backend.priority == priority]
            if strategy == "least-inflight":
                self._rng.shuffle(group)
                group.sort(key=lambda s: s.inflight)
            elif strategy == "latency":
                group.sort(key=lambda s: (s.latency is not None, s.latency or 0.0))
            elif strategy == "cost":
                group.sort(key=lambda s: s.price)
            else:
                group = self._weighted(group)
            ordered.extend(group)
        return ordered

    def _weighted(self, group: list[BackendState]) -> list[BackendState]:
        ordered = []
        while group:
            pick = self._rng.choices(group, weights=[s.backend.weight for s in group])[0]
            ordered.append(pick)
            group.remove(pick)
        return ordered

    def snapshot(self, deployment: Deployment) -> list[dict[str, Any]]:
        return [state.view() for state in self.states(deployment)]

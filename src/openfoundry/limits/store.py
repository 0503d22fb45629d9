"""Where limit state lives. The memory store serves one process; limits/redis.py shares it.

Rates are token buckets: a bucket holds up to `capacity` (the per-minute limit) and refills at
capacity/60 per second; a call takes its cost from every bucket that applies, all or none. A call is
admitted in one step (budgets, concurrency slots and buckets together, atomically) and settled in one
step, so a shared store costs one round trip at each end, not one per limit.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

ADMITTED, OVER_BUDGET, TOO_MANY_IN_FLIGHT, RATE_LIMITED, UNSEEDED = range(5)
"""Verdict outcomes; UNSEEDED means a budget's spend is not in the store yet (see `seed`)."""

Take = tuple[str, float, float]
"""(bucket key, capacity, cost): a plain tuple, as it is made for every limited call."""


class Admission(NamedTuple):
    budgets: tuple[tuple[str, float], ...]
    """(spend key, limit in USD): refused when the spend has reached the limit."""
    flights: tuple[tuple[str, int], ...]
    """(in-flight key, limit): refused when `limit` calls are in flight."""
    takes: tuple[Take, ...]


class Verdict(NamedTuple):
    outcome: int
    which: int = 0
    """Which budget, flight or (for UNSEEDED) budget the outcome is about."""
    spent: float = 0.0
    levels: tuple[float, ...] = ()
    """What the buckets hold after the takes (or at the refusal), in the order of the admission's takes;
    empty unless admitted or rate limited."""


class Settlement(NamedTuple):
    adjustments: tuple[Take, ...]
    """Tokens to give back (positive cost) or take more (negative) once the real count is known."""
    flights: tuple[str, ...]
    """The in-flight counts the call leaves (each settled call leaves exactly once)."""
    spends: tuple[tuple[str, float], ...]
    """(spend key, seconds to keep it) to add `cost` to."""
    cost: float


class LimitStore(Protocol):
    async def admit(self, admission: Admission, now: float) -> Verdict:
        """Check every budget, concurrency slot and bucket; take them all if every one passes, else none."""
        ...

    async def settle(self, settlement: Settlement, now: float) -> None:
        """Apply a settlement; a shared store may return before it is applied, but applies it before
        anything submitted later."""
        ...

    async def seed(self, key: str, spent: float, ttl: float) -> None:
        """Start a budget's spend at `spent` (from the database) unless the store already has it."""
        ...

    async def close(self) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self._buckets: dict[str, list[float]] = {}
        """key -> [tokens, when]: updated in place, as this runs on every limited call"""
        self._flight: dict[str, int] = {}
        """in-flight key -> calls in flight"""
        self._spent: dict[str, float] = {}

    async def admit(self, admission: Admission, now: float) -> Verdict:
        spent = self._spent
        for which, (key, limit) in enumerate(admission.budgets):
            value = spent.get(key)
            if value is None:
                return Verdict(UNSEEDED, which)
            if value >= limit:
                return Verdict(OVER_BUDGET, which, value)
        flight = self._flight
        for which, (key, slots) in enumerate(admission.flights):
            if flight.get(key, 0) >= slots:
                return Verdict(TOO_MANY_IN_FLIGHT, which)
        buckets = self._buckets
        states = []
        levels = []
        admitted = True
        for key, capacity, cost in admission.takes:
            state = buckets.get(key)
            if state is None:
                state = buckets[key] = [capacity, now]
            level = state[0] + (now - state[1]) * capacity / 60.0
            if level > capacity:
                level = capacity
            if level < cost:
                admitted = False
            states.append(state)
            levels.append(level)
        if not admitted:
            return Verdict(RATE_LIMITED, levels=tuple(levels))
        for key, _ in admission.flights:
            flight[key] = flight.get(key, 0) + 1
        after = []
        for state, level, (_, _, cost) in zip(states, levels, admission.takes, strict=True):
            state[0] = level - cost
            state[1] = now
            after.append(level - cost)
        return Verdict(ADMITTED, levels=tuple(after))

    async def settle(self, settlement: Settlement, now: float) -> None:
        buckets = self._buckets
        for key, capacity, amount in settlement.adjustments:
            state = buckets.get(key)
            if state is None:
                state = buckets[key] = [capacity, now]
            level = state[0] + (now - state[1]) * capacity / 60.0
            level = (capacity if level > capacity else level) + amount
            state[0] = capacity if level > capacity else level
            state[1] = now
        flight = self._flight
        for key in settlement.flights:
            flight[key] -= 1
        if settlement.cost:
            spent = self._spent
            for key, _ in settlement.spends:
                spent[key] = spent.get(key, 0.0) + settlement.cost

    async def seed(self, key: str, spent: float, ttl: float) -> None:
        self._spent.setdefault(key, spent)

    async def close(self) -> None:
        return None

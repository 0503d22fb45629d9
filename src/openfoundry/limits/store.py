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

Rate = tuple[str, float]
"""(bucket key, capacity per minute): plain tuples, made once per set of limits."""


class Admission(NamedTuple):
    budgets: tuple[tuple[str, float], ...]
    """(spend key, limit in USD): refused when the spend has reached the limit."""
    flights: tuple[tuple[str, int], ...]
    """(in-flight key, limit): refused when `limit` calls are in flight."""
    requests: tuple[Rate, ...]
    """Requests buckets: the call takes 1 from each."""
    token_buckets: tuple[Rate, ...]
    tokens: float
    """What the call takes from each tokens bucket: its estimate."""
    group: int
    """Calls of one group have the same limits (budgets, flights and buckets): a shared store may add them up."""


class Verdict(NamedTuple):
    outcome: int
    which: int = 0
    """Which budget, flight or (for UNSEEDED) budget the outcome is about."""
    spent: float = 0.0
    levels: tuple[float, ...] = ()
    """What the buckets hold after the takes (or at the refusal), requests buckets first; empty unless
    admitted or rate limited."""


class Settlement(NamedTuple):
    token_buckets: tuple[Rate, ...]
    tokens: float
    """Tokens to give back to each tokens bucket (negative: take more) once the real count is known."""
    flights: tuple[str, ...]
    """The in-flight counts the call leaves (each settled call leaves exactly once)."""
    spends: tuple[tuple[str, float], ...]
    """(spend key, seconds to keep it) to add `cost` to."""
    cost: float
    group: int
    """As in `Admission`: settlements of one group have the same limits."""


class LimitStore(Protocol):
    def admit_now(self, admission: Admission, now: float) -> Verdict | None:
        """`admit`, when the store can decide without waiting (the memory store always can); else None."""
        ...

    async def admit(self, admission: Admission, now: float) -> Verdict:
        """Check every budget, concurrency slot and bucket; take them all if every one passes, else none."""
        ...

    def settle(self, settlement: Settlement, now: float) -> None:
        """Apply a settlement; a shared store queues it, and applies it before anything submitted later."""
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
        return self.admit_now(admission, now)

    def admit_now(self, admission: Admission, now: float) -> Verdict:
        spent = self._spent
        for key, limit in admission.budgets:
            value = spent.get(key)
            if value is None or value >= limit:
                return self._budget_refusal(admission.budgets)
        flight = self._flight
        for which, (key, slots) in enumerate(admission.flights):
            count = flight.get(key, 0)
            if count >= slots:
                for left, _ in admission.flights[:which]:
                    flight[left] -= 1
                return Verdict(TOO_MANY_IN_FLIGHT, which)
            flight[key] = count + 1
        buckets = self._buckets
        levels: list[float] = []
        cost = 1.0
        for group in (admission.requests, admission.token_buckets):
            for key, capacity in group:
                state = buckets.get(key)
                if state is None:
                    state = buckets[key] = [capacity, now]
                level = state[0] + (now - state[1]) * capacity / 60.0
                if level > capacity:
                    level = capacity
                state[1] = now
                if level < cost:
                    state[0] = level
                    return self._rate_refusal(admission, len(levels), now)
                state[0] = level = level - cost
                levels.append(level)
            cost = admission.tokens
        return Verdict(ADMITTED, 0, 0.0, tuple(levels))

    def _budget_refusal(self, budgets: tuple[tuple[str, float], ...]) -> Verdict:
        for which, (key, limit) in enumerate(budgets):
            value = self._spent.get(key)
            if value is None:
                return Verdict(UNSEEDED, which)
            if value >= limit:
                return Verdict(OVER_BUDGET, which, value)
        raise AssertionError("no budget refuses")

    def _rate_refusal(self, admission: Admission, taken: int, now: float) -> Verdict:
        """Give back the slots and what the first `taken` buckets gave (all or none); report every bucket's
        level."""
        for key, _ in admission.flights:
            self._flight[key] -= 1
        levels = []
        for index, (key, capacity) in enumerate(admission.requests + admission.token_buckets):
            state = self._buckets.setdefault(key, [capacity, now])
            if index < taken:
                state[0] += 1.0 if index < len(admission.requests) else admission.tokens
            levels.append(min(capacity, state[0] + (now - state[1]) * capacity / 60.0))
        return Verdict(RATE_LIMITED, levels=tuple(levels))

    def settle(self, settlement: Settlement, now: float) -> None:
        tokens = settlement.tokens
        if tokens:
            buckets = self._buckets
            for key, capacity in settlement.token_buckets:
                state = buckets.get(key)
                if state is None:
                    state = buckets[key] = [capacity, now]
                level = state[0] + (now - state[1]) * capacity / 60.0
                level = (capacity if level > capacity else level) + tokens
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

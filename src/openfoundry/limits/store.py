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
    """The limits a call must pass, made once per set of limits (and budget period)."""

    budgets: tuple[tuple[str, float], ...]
    """(spend key, limit in USD): refused when the spend has reached the limit."""
    flights: tuple[tuple[str, int], ...]
    """(in-flight key, limit): refused when `limit` calls are in flight."""
    requests: tuple[Rate, ...]
    """Requests buckets: the call takes 1 from each."""
    token_buckets: tuple[Rate, ...]
    """Tokens buckets: the call takes its estimate from each."""
    group: int
    """Names these limits: a store may keep what it resolved for them, or add up calls that share them."""


class Verdict(NamedTuple):
    outcome: int
    which: int = 0
    """Which budget, flight or (for UNSEEDED) budget the outcome is about."""
    spent: float = 0.0
    refills: tuple[float, ...] = ()
    """Seconds until each bucket is full again, after the takes (or at the refusal), requests buckets
    first; empty unless admitted or rate limited."""


class Settlement(NamedTuple):
    """What an admitted call gives back, made with its `Admission` (same group)."""

    token_buckets: tuple[Rate, ...]
    flights: tuple[str, ...]
    """The in-flight counts the call leaves (each settled call leaves exactly once)."""
    spends: tuple[tuple[str, float], ...]
    """(spend key, seconds to keep it) to add the call's cost to."""
    group: int


class LimitStore(Protocol):
    def admit_now(self, admission: Admission, tokens: float, now: float) -> Verdict | None:
        """`admit`, when the store can decide without waiting (the memory store always can); else None."""
        ...

    async def admit(self, admission: Admission, tokens: float, now: float) -> Verdict:
        """Check every budget, concurrency slot and bucket (taking `tokens` from each tokens bucket); take
        them all if every one passes, else none."""
        ...

    def settle(self, settlement: Settlement, tokens: float, cost: float, now: float) -> None:
        """Give `tokens` back to each tokens bucket (negative: take more), leave the slots and add `cost` to
        the spends; a shared store queues it, and applies it before anything submitted later."""
        ...

    async def seed(self, key: str, spent: float, ttl: float) -> None:
        """Start a budget's spend at `spent` (from the database) unless the store already has it."""
        ...

    async def close(self) -> None: ...


Cells = tuple[tuple[tuple[list[float], float], ...], ...]
"""An admission's state cells: (cell, limit) per budget and flight, (cell, seconds per unit) per
requests bucket, then per tokens bucket."""


class MemoryStore:
    """Each bucket is the time it will be full again (GCRA): a take of n moves it n x 60/capacity seconds
    later, and is refused if that is more than a minute away. One float per bucket, no refill to work out."""

    def __init__(self) -> None:
        self._buckets: dict[str, list[float]] = {}
        """bucket key -> [when it is full again]"""
        self._flight: dict[str, list[float]] = {}
        """in-flight key -> [calls in flight]"""
        self._spent: dict[str, list[float]] = {}
        """spend key -> [USD spent]"""
        self._cells: dict[int, Cells] = {}
        """group -> its admission's cells, looked up once"""

    async def admit(self, admission: Admission, tokens: float, now: float) -> Verdict:
        return self.admit_now(admission, tokens, now)

    def admit_now(self, admission: Admission, tokens: float, now: float) -> Verdict:
        cells = self._cells.get(admission.group) or self._resolve(admission)
        if cells is None:
            return self._unseeded(admission)
        budgets, flights, requests, token_buckets = cells
        for cell, limit in budgets:
            if cell[0] >= limit:
                return self._over_budget(budgets)
        for cell, slots in flights:
            if cell[0] >= slots:
                return self._too_many_in_flight(flights, cell)
            cell[0] += 1
        horizon = now + 60.0
        refills: list[float] = []
        for cell, interval in requests:
            full = cell[0]
            if full < now:
                full = now
            full += interval
            if full > horizon:
                return self._rate_refusal(cells, tokens, len(refills), now)
            cell[0] = full
            refills.append(full - now)
        for cell, interval in token_buckets:
            full = cell[0]
            if full < now:
                full = now
            full += interval * tokens
            if full > horizon:
                return self._rate_refusal(cells, tokens, len(refills), now)
            cell[0] = full
            refills.append(full - now)
        return Verdict(ADMITTED, 0, 0.0, tuple(refills))

    def _resolve(self, admission: Admission) -> Cells | None:
        """The admission's cells (None while a budget's spend is unseeded)."""
        spent = self._spent
        if any(key not in spent for key, _ in admission.budgets):
            return None
        flight, buckets = self._flight, self._buckets
        cells = (
            tuple((spent[key], limit) for key, limit in admission.budgets),
            tuple((flight.setdefault(key, [0]), slots) for key, slots in admission.flights),
            tuple((buckets.setdefault(key, [0.0]), 60.0 / capacity) for key, capacity in admission.requests),
            tuple((buckets.setdefault(key, [0.0]), 60.0 / capacity) for key, capacity in admission.token_buckets),
        )
        if len(self._cells) > 10_000:
            self._cells.clear()
        self._cells[admission.group] = cells
        return cells

    def _unseeded(self, admission: Admission) -> Verdict:
        which = next(i for i, (key, _) in enumerate(admission.budgets) if key not in self._spent)
        return Verdict(UNSEEDED, which)

    @staticmethod
    def _over_budget(budgets: tuple[tuple[list[float], float], ...]) -> Verdict:
        which = next(i for i, (cell, limit) in enumerate(budgets) if cell[0] >= limit)
        return Verdict(OVER_BUDGET, which, budgets[which][0][0])

    @staticmethod
    def _too_many_in_flight(flights: tuple[tuple[list[float], float], ...], full: list[float]) -> Verdict:
        """Give back the slots taken before the full one."""
        for which, (cell, _) in enumerate(flights):
            if cell is full:
                return Verdict(TOO_MANY_IN_FLIGHT, which)
            cell[0] -= 1
        raise AssertionError("the full slot is not among the flights")

    @staticmethod
    def _rate_refusal(cells: Cells, tokens: float, taken: int, now: float) -> Verdict:
        """Give back the slots and what the first `taken` buckets gave (all or none); report every bucket."""
        _, flights, requests, token_buckets = cells
        for cell, _ in flights:
            cell[0] -= 1
        refills: list[float] = []
        for index, (cell, interval) in enumerate(requests + token_buckets):
            if index < taken:
                cell[0] -= interval if index < len(requests) else interval * tokens
            refills.append(cell[0] - now if cell[0] > now else 0.0)
        return Verdict(RATE_LIMITED, refills=tuple(refills))

    def settle(self, settlement: Settlement, tokens: float, cost: float, now: float) -> None:
        cells = self._cells.get(settlement.group)
        if cells is None:  # forgotten since the admission: every cell is still in its table
            buckets, flight, spent = self._buckets, self._flight, self._spent
            token_buckets = tuple((buckets[key], 60.0 / capacity) for key, capacity in settlement.token_buckets)
            flights = tuple((flight[key], 0.0) for key in settlement.flights)
            budgets = tuple((spent[key], 0.0) for key, _ in settlement.spends)
        else:
            budgets, flights, _, token_buckets = cells
        if tokens:
            for cell, interval in token_buckets:
                full = cell[0]
                cell[0] = (full if full > now else now) - tokens * interval
        for cell, _ in flights:
            cell[0] -= 1
        if cost:
            for cell, _ in budgets:
                cell[0] += cost

    async def seed(self, key: str, spent: float, ttl: float) -> None:
        self._spent.setdefault(key, [spent])

    async def close(self) -> None:
        return None

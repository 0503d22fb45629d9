"""Where limit state lives. The memory store serves one process; limits/redis.py shares it.

Rates are token buckets: a bucket holds up to `capacity` (the per-minute limit) and refills at
capacity/60 per second; a call takes its cost from every bucket that applies, all or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Take:
    key: str
    capacity: float
    cost: float


@dataclass(frozen=True, slots=True)
class Level:
    """A bucket's state after a take (or at the refusal): what is left and when it is full again."""

    remaining: float
    capacity: float

    def seconds_to_full(self) -> float:
        return max(0.0, self.capacity - self.remaining) * 60.0 / self.capacity if self.capacity else 0.0

    def seconds_until(self, cost: float) -> float:
        return max(0.0, cost - self.remaining) * 60.0 / self.capacity if self.capacity else 0.0


class LimitStore(Protocol):
    async def take(self, takes: list[Take], now: float) -> tuple[bool, list[Level]]:
        """Take every cost, or none if any bucket is short; the levels say where each bucket stands."""
        ...

    async def adjust(self, key: str, capacity: float, amount: float, now: float) -> None:
        """Give back (positive) or take more (negative) once the real cost is known."""
        ...

    async def enter(self, key: str, limit: int, ticket: str, now: float) -> bool:
        """Count one more call in flight under `key`, unless `limit` are already."""
        ...

    async def leave(self, key: str, ticket: str) -> None: ...

    async def spent(self, key: str) -> float | None:
        """Money spent under a budget key, or None if this store has no figure for it yet."""
        ...

    async def spend(self, key: str, amount: float, initial: float, ttl: float) -> None:
        """Add to a budget key, starting it at `initial` (from the database) if it is new."""
        ...


class MemoryStore:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._flight: dict[str, set[str]] = {}
        self._spent: dict[str, float] = {}

    def _level(self, key: str, capacity: float, now: float) -> float:
        tokens, then = self._buckets.get(key, (capacity, now))
        return min(capacity, tokens + (now - then) * capacity / 60.0)

    async def take(self, takes: list[Take], now: float) -> tuple[bool, list[Level]]:
        levels = [self._level(t.key, t.capacity, now) for t in takes]
        allowed = all(level >= t.cost for level, t in zip(levels, takes, strict=True))
        if allowed:
            levels = [level - t.cost for level, t in zip(levels, takes, strict=True)]
            for level, t in zip(levels, takes, strict=True):
                self._buckets[t.key] = (level, now)
        return allowed, [Level(level, t.capacity) for level, t in zip(levels, takes, strict=True)]

    async def adjust(self, key: str, capacity: float, amount: float, now: float) -> None:
        self._buckets[key] = (min(capacity, self._level(key, capacity, now) + amount), now)

    async def enter(self, key: str, limit: int, ticket: str, now: float) -> bool:
        flight = self._flight.setdefault(key, set())
        if len(flight) >= limit:
            return False
        flight.add(ticket)
        return True

    async def leave(self, key: str, ticket: str) -> None:
        self._flight.get(key, set()).discard(ticket)

    async def spent(self, key: str) -> float | None:
        return self._spent.get(key)

    async def spend(self, key: str, amount: float, initial: float, ttl: float) -> None:
        self._spent[key] = self._spent.get(key, initial) + amount

"""Admission to an engine's slots: a bounded queue, fair between callers, with a wait limit.

A call takes a slot at once when one is free and nobody waits; otherwise it queues behind the calls of
its own caller, and freed slots go to callers in turn (round robin), so one busy project cannot starve
the others. A full queue, or a wait past `queue_timeout`, is a 429 with a Retry-After estimated from
recent service times.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque

from openfoundry.errors import RateLimited

"""Who a call is for (a project), as the gateway knows it; the queue's unit of fairness."""


class Scheduler:
    def __init__(self, name: str, slots: int, max_queue: int, queue_timeout: float) -> None:
        self.name = name
        self.slots = slots
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.free = slots
        self.queued = 0
        self.rejected = 0
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._turns: deque[str] = deque()
        self._service = 1.0
        """EWMA of seconds a call holds a slot, for Retry-After."""

    @property
    def running(self) -> int:
        return self.slots - self.free

    def retry_after(self) -> int:
        """Seconds until a slot is likely free for one more caller."""
        return max(1, math.ceil(self._service * (self.queued + 1) / self.slots))

    def _refuse(self, why: str) -> RateLimited:
        self.rejected += 1
        wait = self.retry_after()
        return RateLimited(
            f"engine {self.name!r} is busy: {why}; retry after {wait} s",
            code="engine_overloaded",
            headers={"Retry-After": str(wait)},
        )

    async def acquire(self, caller: str = "") -> float:
        """Wait for a slot (FIFO within a caller, round robin between callers); returns when it was granted."""
        if self.free > 0 and self.queued == 0:
            self.free -= 1
            return time.monotonic()
        if self.queued >= self.max_queue:
            raise self._refuse(f"{self.queued} calls already wait for {self.slots} slot(s)")
        key = caller
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._waiting.get(key)
        if line is None:
            line = self._waiting[key] = deque()
            self._turns.append(key)
        line.append(granted)
        self.queued += 1
        try:
            await asyncio.wait({granted}, timeout=self.queue_timeout)
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(time.monotonic())
            else:
                self._forget(key, granted)
            raise
        if not granted.done():
            self._forget(key, granted)
            raise self._refuse(f"no slot freed within queue_timeout ({self.queue_timeout:g} s)")
        return time.monotonic()

    def release(self, granted_at: float) -> None:
        """Give the slot back: to the next caller in turn, or to the pool."""
        self._service = 0.8 * self._service + 0.2 * max(0.0, time.monotonic() - granted_at)
        while self._turns:
            key = self._turns.popleft()
            line = self._waiting[key]
            waiter = line.popleft()
            self.queued -= 1
            if line:
                self._turns.append(key)
            else:
                del self._waiting[key]
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1

    def _forget(self, key: str, waiter: asyncio.Future[None]) -> None:
        waiter.cancel()
        line = self._waiting.get(key)
        if line is None or waiter not in line:
            return
        line.remove(waiter)
        self.queued -= 1
        if not line:
            del self._waiting[key]
            self._turns.remove(key)

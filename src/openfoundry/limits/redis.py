"""Limit state in Redis, so every gateway process shares it.

Every admission, settlement and seed a process has pending goes to Redis as one script call (a JSON
list of operations, applied in order, atomically): under load one round trip serves many requests,
and one batch is in flight at a time, so a settlement is always applied before any later admission
from the same process. While no limit is near, a call does not even wait for that round trip (see
`Mirror`). Time comes from Redis (TIME), so processes on different hosts agree. Calls have short
timeouts; the limiter decides what a failure means (storage.redis_policy).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as redis

from openfoundry.limits.store import (
    ADMITTED,
    OVER_BUDGET,
    RATE_LIMITED,
    STALE_FLIGHT_SECONDS,
    UNSEEDED,
    Admission,
    Settlement,
    Verdict,
)

log = logging.getLogger("openfoundry")
PREFIX = "foundry:"

# Operations: {"a": [ticket, budgets, flights, takes, force]} admit (`force`: take even where a limit
# would refuse, for a call already let in); {"s": [ticket, adjustments, flights, spends, cost]} settle;
# {"d": [key, spent, ttl]} seed. The answer is one entry per operation: for an admission [outcome,
# which, bucket levels, in-flight counts, spends] (the outcome codes of limits/store.py), else 0.
_BATCH = """
local P, STALE = ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000

local function level(key, capacity)
  local state = redis.call('HMGET', P .. key, 't', 'ts')
  local tokens, ts = tonumber(state[1]), tonumber(state[2])
  if tokens == nil then return capacity end
  return math.min(capacity, tokens + math.max(0, now - ts) * capacity / 60)
end

local function store_level(key, tokens)
  redis.call('HSET', P .. key, 't', tostring(tokens), 'ts', tostring(now))
  redis.call('EXPIRE', P .. key, 120)
end

local function admit(ticket, budgets, flights, takes, force)
  local outcome, which, spends, counts, levels = 0, 0, {}, {}, {}
  for i, b in ipairs(budgets) do
    local spent = redis.call('GET', P .. b[1])
    if not spent then return {4, i - 1, {}, {}, {}} end
    spends[i] = tonumber(spent)
    if outcome == 0 and spends[i] >= b[2] then outcome, which = 1, i - 1 end
  end
  for i, f in ipairs(flights) do
    redis.call('ZREMRANGEBYSCORE', P .. f[1], '-inf', now - STALE)
    counts[i] = redis.call('ZCARD', P .. f[1])
    if outcome == 0 and counts[i] >= f[2] then outcome, which = 2, i - 1 end
  end
  for i, take in ipairs(takes) do
    levels[i] = level(take[1], take[2])
    if outcome == 0 and levels[i] < take[3] then outcome = 3 end
  end
  if outcome == 0 or force then
    for i, f in ipairs(flights) do
      counts[i] = counts[i] + redis.call('ZADD', P .. f[1], now, ticket)
      redis.call('EXPIRE', P .. f[1], STALE)
    end
    for i, take in ipairs(takes) do
      levels[i] = levels[i] - take[3]
      store_level(take[1], levels[i])
    end
  end
  return {outcome, which, levels, counts, spends}
end

local function settle(ticket, adjustments, flights, spends, cost)
  for _, a in ipairs(adjustments) do
    store_level(a[1], math.min(a[2], level(a[1], a[2]) + a[3]))
  end
  for _, key in ipairs(flights) do redis.call('ZREM', P .. key, ticket) end
  if cost ~= 0 then
    for _, s in ipairs(spends) do
      redis.call('INCRBYFLOAT', P .. s[1], string.format('%.17g', cost))
      redis.call('EXPIRE', P .. s[1], math.ceil(s[2]))
    end
  end
  return 0
end

local results = {}
for i, op in ipairs(cjson.decode(ARGV[1])) do
  if op.a then results[i] = admit(unpack(op.a))
  elseif op.s then results[i] = settle(unpack(op.s))
  else
    local key = P .. op.d[1]
    if redis.call('SET', key, string.format('%.17g', op.d[2]), 'NX') then
      redis.call('EXPIRE', key, math.ceil(op.d[3]))
    end
    results[i] = 0
  end
end
return cjson.encode(results)
"""


Pending = tuple[dict[str, Any], Admission | None, "asyncio.Future[Any] | None"]
"""An operation waiting for the next batch: what to send, the admission to learn from, who waits."""

MARGIN = 0.1
"""A call is let in at once, before Redis answers, only while every limit it meets is this far (as a
share of the limit) from being reached, by what this process last heard, and while this process's own
calls that Redis has not answered yet add up to at most half of that."""
UNWAITED_DELAY = 0.002
"""Operations nobody waits for (settlements, calls already let in) wait this long for company, so
that at low load a call costs Redis about one script run, not two."""
MAX_BATCH = 256
FRESH_SECONDS = 1.0
"""…and only if it heard about each of those limits this recently."""


class Mirror:
    """What this process last heard from Redis about each limit, and what it let in since.

    It lets a call in without waiting for Redis when no limit is near: the admission still goes to
    Redis (taking unconditionally, so the shared state stays exact) and its answer refreshes the
    mirror. Near a limit, or with stale knowledge, calls wait for Redis's verdict, so processes
    overshoot a shared limit only if, between two answers, they let in more than the margin together.
    """

    def __init__(self) -> None:
        self.heard: dict[str, tuple[float, float]] = {}
        """limit key -> (bucket level, in-flight count or spend, as Redis last said; when)"""
        self.unheard: dict[str, float] = {}
        """limit key -> what this process took (tokens, slots) in calls Redis has not answered yet"""

    def clearly_admits(self, admission: Admission, now: float) -> tuple[float, ...] | None:
        """The buckets' levels after the takes if no limit is near, else None."""
        fresh = now - FRESH_SECONDS
        for key, limit in admission.budgets:
            spent, heard = self.heard.get(key, (0.0, 0.0))
            if heard < fresh or spent >= limit * (1 - MARGIN):
                return None
        for key, slots in admission.flights:
            count, heard = self.heard.get(key, (0.0, 0.0))
            unheard = self.unheard.get(key, 0.0) + 1
            if heard < fresh or count + unheard > slots * (1 - MARGIN) or unheard > slots * MARGIN / 2:
                return None
        levels = []
        for key, capacity, cost in admission.takes:
            tokens, heard = self.heard.get(key, (0.0, 0.0))
            unheard = self.unheard.get(key, 0.0) + cost
            level = min(capacity, tokens + (now - heard) * capacity / 60.0) - unheard
            if heard < fresh or level < capacity * MARGIN or unheard > capacity * MARGIN / 2:
                return None
            levels.append(level)
        return tuple(levels)

    def take(self, admission: Admission, sign: int = 1) -> None:
        """Count a call let in before Redis answered (sign -1: forget one Redis never got)."""
        for key, _, cost in admission.takes:
            self.unheard[key] = self.unheard.get(key, 0.0) + sign * cost
        for key, _ in admission.flights:
            self.unheard[key] = self.unheard.get(key, 0.0) + sign

    def learn(self, admission: Admission, answer: list[Any], taken_before: bool, now: float) -> None:
        """Take in Redis's answer to an admission (`taken_before`: one let in before it answered)."""
        _, _, levels, counts, spends = answer
        for (key, _, cost), level in zip(admission.takes, levels, strict=False):
            self.heard[key] = (float(level), now)
            if taken_before:
                self.unheard[key] -= cost
        for (key, _), count in zip(admission.flights, counts, strict=False):
            self.heard[key] = (float(count), now)
            if taken_before:
                self.unheard[key] -= 1
        for (key, _), spent in zip(admission.budgets, spends, strict=False):
            self.heard[key] = (float(spent), now)

    def settle(self, settlement: Settlement) -> None:
        for key in settlement.flights:
            count, heard = self.heard.get(key, (1.0, 0.0))
            self.heard[key] = (max(0.0, count - 1), heard)
        if settlement.cost:
            for key, _ in settlement.spends:
                spent, heard = self.heard.get(key, (0.0, 0.0))
                self.heard[key] = (spent + settlement.cost, heard)


class RedisStore:
    def __init__(self, url: str, timeout: float = 0.25, on_failure: Callable[[], None] = lambda: None) -> None:
        self.client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self._script = self.client.register_script(_BATCH)
        self._on_failure = on_failure
        self._mirror = Mirror()
        self._healthy = False
        self._pending: list[Pending] = []
        self._sender: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def admit(self, admission: Admission, now: float) -> Verdict:
        now = time.time()  # the mirror keeps local time, whatever the limiter's clock says
        levels = self._mirror.clearly_admits(admission, now) if self._healthy else None
        op = {"a": (*admission, levels is not None)}
        if levels is not None:
            self._mirror.take(admission)
            self._enqueue(op, admission, None)
            return Verdict(ADMITTED, levels=levels)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(op, admission, future)
        outcome, which, levels_now, _, spends = await future
        if outcome == OVER_BUDGET:
            return Verdict(outcome, which, float(spends[which]))
        if outcome not in (ADMITTED, RATE_LIMITED):
            return Verdict(outcome, which)
        return Verdict(outcome, levels=tuple(map(float, levels_now)))

    async def settle(self, settlement: Settlement, now: float) -> None:
        self._mirror.settle(settlement)
        self._enqueue({"s": tuple(settlement)}, None, None)

    async def seed(self, key: str, spent: float, ttl: float) -> None:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue({"d": [key, spent, ttl]}, None, future)
        await future

    def _enqueue(self, op: dict[str, Any], admission: Admission | None, future: asyncio.Future[Any] | None) -> None:
        self._pending.append((op, admission, future))
        if self._sender is not None:
            return  # the batch being sent takes this one too, once Redis has answered
        if future is not None or len(self._pending) >= MAX_BATCH:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(UNWAITED_DELAY, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sender is None and self._pending:
            # It starts on the loop's next turn, so every request arriving in this turn joins the batch.
            self._sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    ops = orjson.dumps([op for op, _, _ in batch])
                    answers = orjson.loads(await self._script(args=[ops, PREFIX, STALE_FLIGHT_SECONDS]))
                except Exception as exc:
                    self._healthy = False
                    self._fail(batch, exc)
                    continue
                self._healthy = True
                now = time.time()
                for (_, admission, future), answer in zip(batch, answers, strict=True):
                    if admission is not None and answer[0] != UNSEEDED:
                        self._mirror.learn(admission, answer, future is None, now)
                    if future is not None and not future.done():
                        future.set_result(answer)
        finally:
            self._sender = None

    def _fail(
        self, batch: list[Pending], exc: Exception
    ) -> None:
        unwaited = 0
        for _, admission, future in batch:
            if future is None:
                unwaited += 1
                if admission is not None:
                    self._mirror.take(admission, -1)
            elif not future.done():
                future.set_exception(exc)
        if unwaited:  # calls already let in and settlements, which nobody waits for: count and log the loss
            self._on_failure()
            log.warning("limit store unavailable; %d updates lost (%s: %s)", unwaited, type(exc).__name__, exc)

    async def close(self) -> None:
        self._start()
        if self._sender is not None:
            await asyncio.wait([self._sender], timeout=2)
        await self.client.aclose()

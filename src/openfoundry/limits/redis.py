"""Limit state in Redis, so every gateway process shares it.

Everything a process has pending goes to Redis as one script run (a `Batch`, applied atomically):
under load one round trip serves many requests, and one batch is in flight at a time, so a
settlement is always applied before any later admission from the same process. While no limit is
near, a call does not even wait for that round trip (see `Mirror`), and the calls let in that way add
up per limit inside the batch, so Redis's work per batch barely grows with the number of calls. Calls
in flight are counted per process: each process tells Redis its own count per concurrency limit (not
one entry per call), and while it has calls in flight it says so at least every HEARTBEAT_SECONDS; a
process silent for PROCESS_STALE_SECONDS has died, and its calls stop counting. Time comes from Redis
(TIME), so processes on different hosts agree. Calls have short timeouts; the
limiter decides what a failure means (storage.redis_policy).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from openfoundry.limits.resp import Connection, ReplyError, command
from openfoundry.limits.store import (
    ADMITTED,
    OVER_BUDGET,
    RATE_LIMITED,
    UNSEEDED,
    Admission,
    Settlement,
    Verdict,
)

log = logging.getLogger("openfoundry")
PREFIX = "foundry:"

# ARGV[1] is a `Batch` as JSON (see Batch.close), applied in this order: seeds; the calls already let
# in and settled (every take and spend read added up per limit, and this process's new in-flight counts);
# then the admissions that wait for a verdict, one by one. ARGV[5] is "1" when the process announces that
# it is alive (see RedisStore._send). The answer, as RESP arrays of integers: [levels, in-flight counts and
# spends after the calls let in (-1: a spend not in Redis), [per admission: outcome, which, levels, counts,
# spends]], levels in thousandths of a unit and spends in millionths of a USD. Numbers cross into Redis as
# integer-formatted strings and come back as integers: formatting floats was an eighth of a script run.
_SCRIPT = """
local P, PROCESS, STALE, ANNOUNCE = ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1'
local PROCESSES = P .. 'processes'
local batch = cjson.decode(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local since = now - tonumber(STALE)

local function int(x) return string.format('%d', x) end
local function stamp(seconds)  -- a time to the microsecond, without formatting a float
  local whole = math.floor(seconds)
  return string.format('%d.%06d', whole, math.floor((seconds - whole) * 1000000))
end
local function milli(x) return math.floor(x * 1000) end
local function micro(x) return math.floor(x * 1000000) end

-- A bucket is kept as the time it is full again (GCRA-style, as the memory store keeps it), under its
-- own key, which expires a second after that: one read, one SET to write it.
local function level_of(full, capacity)
  full = tonumber(full)
  if full == nil or full <= now then return capacity end
  return capacity - (full - now) * capacity / 60
end

local function store_level(key, tokens, capacity)
  local seconds = (capacity - tokens) * 60 / capacity
  redis.call('SET', P .. 'full-at:' .. key, stamp(now + seconds), 'PX', int(math.ceil(seconds * 1000) + 1000))
end

-- Calls in flight are counted per process: an in-flight hash maps each process to its count, which
-- that process sets. A process that has not announced itself for STALE seconds has died and its counts
-- no longer count (a live one announces itself at least every few seconds while it has calls in flight,
-- and then refreshes the expiry of each in-flight hash it holds).
if ANNOUNCE then
  redis.call('ZADD', PROCESSES, stamp(now), PROCESS)
  redis.call('ZREMRANGEBYSCORE', PROCESSES, '-inf', '(' .. int(math.floor(since)))
end
local alive = {[PROCESS] = true}
local function in_flight(key)
  local fields = redis.call('HGETALL', P .. key)
  local total = 0
  for i = 1, #fields, 2 do
    local process = fields[i]
    if alive[process] == nil then
      local seen = redis.call('ZSCORE', PROCESSES, process)
      alive[process] = seen ~= false and tonumber(seen) >= since
    end
    if alive[process] then
      total = total + tonumber(fields[i + 1])
    else
      redis.call('HDEL', P .. key, process)
    end
  end
  return total
end

local function fly(key, count)
  if count > 0 then
    if redis.call('HSET', P .. key, PROCESS, int(count)) == 1 or ANNOUNCE then
      redis.call('EXPIRE', P .. key, STALE)
    end
  else
    redis.call('HDEL', P .. key, PROCESS)
  end
end

local function admit(budgets, flights, takes)
  local outcome, which, spends, counts, levels = 0, 0, {}, {}, {}
  for i, b in ipairs(budgets) do
    local spent = redis.call('GET', P .. b[1])
    if not spent then return {4, i - 1, {}, {}, {}} end
    spends[i] = tonumber(spent)
    if outcome == 0 and spends[i] >= b[2] then outcome, which = 1, i - 1 end
  end
  for i, f in ipairs(flights) do
    counts[i] = in_flight(f[1])
    if outcome == 0 and counts[i] >= f[2] then outcome, which = 2, i - 1 end
  end
  for i, take in ipairs(takes) do
    levels[i] = level_of(redis.call('GET', P .. 'full-at:' .. take[1]), take[2])
    if outcome == 0 and levels[i] < take[3] then outcome = 3 end
  end
  if outcome == 0 then
    for i, f in ipairs(flights) do
      redis.call('HINCRBY', P .. f[1], PROCESS, 1)
      redis.call('EXPIRE', P .. f[1], STALE)
      counts[i] = counts[i] + 1
    end
    for i, take in ipairs(takes) do
      levels[i] = levels[i] - take[3]
      store_level(take[1], levels[i], take[2])
    end
  end
  for i, level in ipairs(levels) do levels[i] = milli(level) end
  for i, spent in ipairs(spends) do spends[i] = micro(spent) end
  return {outcome, which, levels, counts, spends}
end

for _, s in ipairs(batch.seeds) do
  if redis.call('SET', P .. s[1], string.format('%.17g', s[2]), 'NX') then
    redis.call('EXPIRE', P .. s[1], int(math.ceil(s[3])))
  end
end

-- every bucket and spend the batch touches is read in one MGET; a bucket both taken from and given back
-- to is written once
local keys, buckets, capacities = {}, {}, {}
for _, b in ipairs(batch.takes) do keys[#keys + 1] = P .. 'full-at:' .. b[1] end
for _, r in ipairs(batch.returns) do keys[#keys + 1] = P .. 'full-at:' .. r[1] end
for _, key in ipairs(batch.reads) do keys[#keys + 1] = P .. key end
local values = {}
for first = 1, #keys, 1000 do  -- in slices: Lua unpacks at most a few thousand values at once
  for i, value in ipairs(redis.call('MGET', unpack(keys, first, math.min(first + 999, #keys)))) do
    values[first + i - 1] = value
  end
end
local function bucket(key, capacity, value)
  if buckets[key] == nil then buckets[key], capacities[key] = level_of(value, capacity), capacity end
  return buckets[key]
end
local taken, returned = #batch.takes, #batch.returns
local levels, counts, spends = {}, {}, {}
for i, b in ipairs(batch.takes) do
  buckets[b[1]] = bucket(b[1], b[2], values[i]) - b[3]
  levels[i] = milli(buckets[b[1]])
end
for i, r in ipairs(batch.returns) do
  buckets[r[1]] = math.min(r[2], bucket(r[1], r[2], values[taken + i]) + r[3])
end
for i, _ in ipairs(batch.reads) do spends[i] = micro(tonumber(values[taken + returned + i] or '-1')) end
for i, f in ipairs(batch.flights) do
  fly(f[1], f[2])
  counts[i] = in_flight(f[1])
end

for key, tokens in pairs(buckets) do store_level(key, tokens, capacities[key]) end
for _, c in ipairs(batch.costs) do
  local added = string.format('%.17g', c[3])
  if tonumber(redis.call('INCRBYFLOAT', P .. c[1], added)) == tonumber(added) then  -- was new (or 0): set expiry
    redis.call('EXPIRE', P .. c[1], int(math.ceil(c[2])))
  end
end

local verdicts = {}
for i, a in ipairs(batch.admissions) do verdicts[i] = admit(unpack(a)) end
return {levels, counts, spends, verdicts}
"""
_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()

MARGIN = 0.1
"""A call is let in at once, before Redis answers, only while every limit it meets is this far (as a
share of the limit) from being reached, by what this process last heard, and while this process's own
calls that Redis has not answered yet add up to at most half of that."""
FRESH_SECONDS = 1.0
"""…and only if Redis spoke of the call's group of limits this recently."""
UNWAITED_DELAY = 0.01
"""Operations nobody waits for (settlements, calls already let in) wait this long for company, so that
at low load a script run (about half a million instructions in Redis) serves several calls, not one.
It only delays when other processes hear of calls already let in, which the mirror's margin allows for;
a call that waits for a verdict is sent on the loop's next turn, with whatever is pending."""
MAX_BATCH = 256
"""Operations in a batch past which it goes without waiting for company."""
PROCESS_STALE_SECONDS = 30
"""A process not heard from in this long has died: its calls in flight no longer count."""
HEARTBEAT_SECONDS = 5.0
"""How often a process with calls in flight sends its counts, to show it is alive."""


def _add_up(table: dict[str, list[Any]], key: str, setting: float, amount: float) -> None:
    """`table[key]` becomes [key, setting (the latest), sum of the amounts]."""
    entry = table.get(key)
    if entry is None:
        table[key] = [key, setting, amount]
    else:
        entry[1] = setting
        entry[2] += amount


@dataclass(slots=True)
class Group:
    """The calls of one group (same limits) let in or settled in a batch, added up as they come."""

    admission: Admission | None = None
    let_in: int = 0
    taken: float = 0.0
    """Tokens taken by the calls let in."""
    settlement: Settlement | None = None
    settled: int = 0
    returned: float = 0.0
    """Tokens given back by the calls settled (negative: taken more)."""
    cost: float = 0.0


@dataclass(slots=True)
class Totals:
    """A batch's groups added up per limit: what Redis applies, and what the mirror allows for."""

    takes: dict[str, list[Any]] = field(default_factory=dict)
    """bucket key -> [key, capacity, tokens taken by calls let in]"""
    let_in: dict[str, int] = field(default_factory=dict)
    """in-flight key -> calls let in"""
    reads: dict[str, float] = field(default_factory=dict)
    """spend key -> budget limit, for the spends the mirror wants"""
    returns: dict[str, list[Any]] = field(default_factory=dict)
    """bucket key -> [key, capacity, tokens given back]"""
    left: dict[str, int] = field(default_factory=dict)
    """in-flight key -> calls settled"""
    costs: dict[str, list[Any]] = field(default_factory=dict)
    """spend key -> [key, seconds to keep it, USD to add]"""


def totals_of(groups: dict[int, Group]) -> Totals:
    totals = Totals()
    for group in groups.values():
        admission = group.admission
        if admission is not None:
            for key, capacity in admission.requests:
                _add_up(totals.takes, key, capacity, group.let_in)
            for key, capacity in admission.token_buckets:
                _add_up(totals.takes, key, capacity, group.taken)
            for key, _ in admission.flights:
                totals.let_in[key] = totals.let_in.get(key, 0) + group.let_in
            for key, limit in admission.budgets:
                totals.reads[key] = limit
        settlement = group.settlement
        if settlement is not None:
            if group.returned:
                for key, capacity in settlement.token_buckets:
                    _add_up(totals.returns, key, capacity, group.returned)
            for key in settlement.flights:
                totals.left[key] = totals.left.get(key, 0) + group.settled
            if group.cost:
                for key, ttl in settlement.spends:
                    _add_up(totals.costs, key, ttl, group.cost)
    return totals


@dataclass(slots=True)
class Batch:
    """What a process has pending for Redis. Calls already let in and settlements add up per group as they
    come, and per limit when the batch is sent (one bucket update and one in-flight count per limit,
    whatever the number of calls); admissions that wait for a verdict go one by one, in order."""

    groups: defaultdict[int, Group] = field(default_factory=lambda: defaultdict(Group))
    flights: dict[str, None] = field(default_factory=dict)
    """In-flight keys whose count in this process to send (besides those of the calls let in or settled)."""
    totals: Totals = field(default_factory=Totals)
    """The groups added up per limit, once the batch is sent."""
    seeds: list[tuple[str, float, float]] = field(default_factory=list)
    seeded: list[asyncio.Future[None]] = field(default_factory=list)
    """Who waits for each seed."""
    admissions: list[tuple[Admission, float]] = field(default_factory=list)
    """Each with the tokens it takes from its tokens buckets."""
    verdicts: list[asyncio.Future[Any]] = field(default_factory=list)
    """Who waits for each admission's verdict."""
    unwaited: int = 0
    """Calls let in and settlements: what a lost batch loses."""

    @property
    def size(self) -> int:
        return self.unwaited + len(self.seeds) + len(self.admissions) + len(self.flights)

    def let_in(self, admission: Admission, tokens: float) -> None:
        """A call let in without waiting."""
        group = self.groups[admission.group]
        group.admission = admission
        group.let_in += 1
        group.taken += tokens
        self.unwaited += 1

    def settle(self, settlement: Settlement, tokens: float, cost: float) -> None:
        group = self.groups[settlement.group]
        group.settlement = settlement
        group.settled += 1
        group.returned += tokens
        group.cost += cost
        self.unwaited += 1

    def close(self, flying: dict[str, list[int]]) -> bytes:
        """Add the groups up per limit, count their calls in `flying` (the process's in-flight counts) and
        encode the batch for the script."""
        totals = self.totals = totals_of(self.groups)
        for group in self.groups.values():
            if group.admission is not None:
                for key, slots in group.admission.flights:
                    _fly(flying, key, slots, group.let_in)
        for key, calls in totals.left.items():
            flying[key][0] -= calls
        flights = self.flights
        flights.update(dict.fromkeys(totals.let_in))
        flights.update(dict.fromkeys(totals.left))
        return orjson.dumps(
            {
                "seeds": self.seeds,
                "takes": list(totals.takes.values()),
                "flights": [[key, flying[key][0]] for key in flights],
                "reads": list(totals.reads),
                "returns": list(totals.returns.values()),
                "costs": list(totals.costs.values()),
                "admissions": [
                    (a.budgets, a.flights, [(*r, 1.0) for r in a.requests] + [(*t, tokens) for t in a.token_buckets])
                    for a, tokens in self.admissions
                ],
            }
        )


def _fly(flying: dict[str, list[int]], key: str, slots: int, calls: int = 1) -> None:
    """`calls` more in flight on `key` (`flying`: key -> [this process's calls in flight, slots])."""
    entry = flying.get(key)
    if entry is None:
        flying[key] = [calls, slots]
    else:
        entry[0] += calls
        entry[1] = slots


@dataclass(slots=True)
class Known:
    """What the mirror knows of one group's limits: their room entries, and when Redis last spoke of all
    of them (when the group was in an answered batch)."""

    budgets: tuple[list[float], ...]
    flights: tuple[list[float], ...]
    requests: tuple[list[float], ...]
    token_buckets: tuple[list[float], ...]
    heard: float = -math.inf


class Mirror:
    """How much more this process may let in, per limit, without waiting for Redis.

    Each answer from Redis sets a limit's room: what is left before the limit's margin (MARGIN of it),
    at most half the margin, less what this process has let in since that batch was sent. A call every
    limit of which has room is let in at once and takes from that room; its admission still goes to
    Redis (taking unconditionally, so the shared state stays exact). A call that ends gives its slots
    back at once: a concurrency limit's room bounds how many more calls a process has in flight since
    the last answer, not how many it started (under steady load as many end as start). Near a limit, or
    when its group of limits was last in an answer more than FRESH_SECONDS ago, a call waits for
    Redis's verdict, so processes overshoot a shared limit only if, between two answers, they let in
    more than the margin together.
    """

    def __init__(self) -> None:
        self.room: dict[str, list[float]] = {}
        """limit key -> [room, for buckets when it is full again (local time, shown in headers), for buckets
        seconds per unit], updated in place, so that `_known` can hold on to them"""
        self._known: dict[int, Known] = {}
        """group -> its limits' room entries"""

    def clearly_admits(self, admission: Admission, tokens: float, now: float) -> tuple[float, ...] | None:
        """Take from the room of every limit and give the buckets' refill times, if each has room; else None."""
        known = self._known.get(admission.group)
        if known is None or known.heard < now - FRESH_SECONDS:
            return None
        for entry in known.budgets:
            if entry[0] <= 0:
                return None
        flights, requests, token_buckets = known.flights, known.requests, known.token_buckets
        for entry in flights:
            if entry[0] < 1:
                return None
        for entry in requests:
            if entry[0] < 1:
                return None
        for entry in token_buckets:
            if entry[0] < tokens:
                return None
        for entry in flights:
            entry[0] -= 1
        refills = []
        for entry in requests:
            entry[0] -= 1
            full = entry[1]
            entry[1] = full = (full if full > now else now) + entry[2]
            refills.append(full - now)
        for entry in token_buckets:
            entry[0] -= tokens
            full = entry[1]
            entry[1] = full = (full if full > now else now) + entry[2] * tokens
            refills.append(full - now)
        return tuple(refills)

    def _heard(self, admission: Admission, now: float) -> None:
        """Redis has just spoken of every limit of the admission's group."""
        known = self._known.get(admission.group)
        if known is None:
            room = self.room
            kinds = (admission.budgets, admission.flights, admission.requests, admission.token_buckets)
            if any(key not in room for limits in kinds for key, _ in limits):
                return  # a budget's spend not in Redis yet (unseeded)
            budgets, flights, requests, token_buckets = (tuple(room[key] for key, _ in limits) for limits in kinds)
            known = Known(budgets, flights, requests, token_buckets)
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[admission.group] = known
        known.heard = now

    def learn(self, batch: Batch, answer: list[Any], pending: Totals, flying: dict[str, list[int]], now: float) -> None:
        """Take in Redis's answer to `batch` (`pending`: what was let in and settled since it was sent;
        `flying`: the process's in-flight counts and slots)."""
        levels, counts, spends, verdicts = answer
        for (key, capacity, _), level in zip(batch.totals.takes.values(), levels, strict=True):
            self._bucket(key, capacity, level / 1000, pending, now)
        for key, count in zip(batch.flights, counts, strict=True):
            self._flight(key, flying[key][1], count, pending, now)
        for (key, limit), spent in zip(batch.totals.reads.items(), spends, strict=True):
            self._budget(key, limit, spent / 1e6, pending, now)
        for group in batch.groups.values():
            if group.admission is not None:
                self._heard(group.admission, now)
        for (admission, _), verdict in zip(batch.admissions, verdicts, strict=True):
            if verdict[0] == UNSEEDED:
                continue
            _, _, levels, counts, spends = verdict
            for (key, capacity), level in zip(admission.requests + admission.token_buckets, levels, strict=False):
                self._bucket(key, capacity, level / 1000, pending, now)
            for (key, slots), count in zip(admission.flights, counts, strict=False):
                self._flight(key, slots, count, pending, now)
            for (key, limit), spent in zip(admission.budgets, spends, strict=False):
                self._budget(key, limit, spent / 1e6, pending, now)
            self._heard(admission, now)

    def _bucket(self, key: str, capacity: float, level: float, pending: Totals, now: float) -> None:
        taken = pending.takes.get(key)
        since = taken[2] if taken is not None else 0.0
        margin = capacity * MARGIN
        interval = 60.0 / capacity
        self._set(key, min(level - margin, margin / 2) - since, now + (capacity - level + since) * interval, interval)

    def _flight(self, key: str, slots: float, count: float, pending: Totals, now: float) -> None:
        margin = slots * MARGIN
        self._set(key, min(slots - margin - count, margin / 2) - pending.let_in.get(key, 0) + pending.left.get(key, 0))

    def _budget(self, key: str, limit: float, spent: float, pending: Totals, now: float) -> None:
        if spent < 0:  # the spend left Redis: no room, so the next call waits for Redis, and seeds it
            self._set(key, 0.0)
            return
        cost = pending.costs.get(key)
        self._set(key, limit * (1 - MARGIN) - spent - (cost[2] if cost is not None else 0.0))

    def _set(self, key: str, room: float, full: float = 0.0, interval: float = 0.0) -> None:
        entry = self.room.get(key)
        if entry is None:
            self.room[key] = [room, full, interval]
        else:
            entry[0], entry[1], entry[2] = room, full, interval

    def settle(self, settlement: Settlement, cost: float) -> None:
        """A settled call gives its slots back to the room at once, and its cost comes off its budgets'."""
        known = self._known.get(settlement.group)
        if known is not None:
            flights, budgets = known.flights, known.budgets
        else:
            room = self.room
            flights = tuple(room[key] for key in settlement.flights if key in room)
            budgets = tuple(room[key] for key, _ in settlement.spends if key in room)
        for entry in flights:
            entry[0] += 1
        if cost:
            for entry in budgets:
                entry[0] -= cost


class RedisStore:
    def __init__(
        self,
        url: str,
        timeout: float = 0.25,
        on_failure: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = Connection(url, timeout)
        self._on_failure = on_failure
        self._clock = clock
        """Local time, which the mirror keeps (Redis's own TIME rules Redis's state)."""
        self._mirror = Mirror()
        self._healthy = False
        self._process = os.urandom(8).hex()
        self._flying: dict[str, list[int]] = {}
        """in-flight key -> [this process's calls in flight, slots]"""
        self._lost: set[str] = set()
        """In-flight keys whose count a failed batch may have left wrong in Redis."""
        self._pending = Batch()
        self._in_flight: Batch | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False
        """A send is scheduled for the loop's next turn."""
        self._heartbeat: asyncio.TimerHandle | None = None
        self._announced = -math.inf
        """When this process last told Redis it is alive (monotonic time): it does at least every
        HEARTBEAT_SECONDS while it sends batches, and with every heartbeat."""
        self._drained: asyncio.Future[None] | None = None

    def admit_now(self, admission: Admission, tokens: float, now: float) -> Verdict | None:
        """Let the call in at once if the mirror shows room for it everywhere (Redis hears of it soon)."""
        if not self._healthy:
            return None
        refills = self._mirror.clearly_admits(admission, tokens, self._clock())
        if refills is None:
            return None
        self._pending.let_in(admission, tokens)
        self._schedule(waited=False)
        return Verdict(ADMITTED, 0, 0.0, refills)

    async def admit(self, admission: Admission, tokens: float, now: float) -> Verdict:
        verdict = self.admit_now(admission, tokens, now)
        if verdict is not None:
            return verdict
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.admissions.append((admission, tokens))
        self._pending.verdicts.append(future)
        self._schedule(waited=True)
        outcome, which, levels, _, spends = await future
        if outcome == OVER_BUDGET:
            return Verdict(outcome, which, spends[which] / 1e6)
        if outcome not in (ADMITTED, RATE_LIMITED):
            return Verdict(outcome, which)
        refills = tuple(
            (capacity - level / 1000) * 60.0 / capacity
            for (_, capacity), level in zip(admission.requests + admission.token_buckets, levels, strict=True)
        )
        return Verdict(outcome, refills=refills)

    def settle(self, settlement: Settlement, tokens: float, cost: float, now: float) -> None:
        self._mirror.settle(settlement, cost)
        self._pending.settle(settlement, tokens, cost)
        self._schedule(waited=False)

    async def seed(self, key: str, spent: float, ttl: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.seeds.append((key, spent, ttl))
        self._pending.seeded.append(future)
        self._schedule(waited=True)
        await future

    def _schedule(self, waited: bool) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().call_later(HEARTBEAT_SECONDS, self._beat)
        if self._in_flight is not None:
            return  # the answer to the batch in flight sends this one
        if waited or self._pending.unwaited >= MAX_BATCH:
            if not self._soon:  # on the loop's next turn, so every request of this turn joins the batch
                self._soon = True
                asyncio.get_running_loop().call_soon(self._send)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(UNWAITED_DELAY, self._send)

    def _beat(self) -> None:
        """Send every count of calls in flight (and any a failed batch lost), so Redis knows this process
        is alive and what it holds."""
        self._heartbeat = None
        self._announced = -math.inf
        flights = self._pending.flights
        for key, (count, _) in self._flying.items():
            if count or key in self._lost:
                flights[key] = None
        self._lost.clear()
        if flights:
            self._schedule(waited=False)

    def _send(self) -> None:
        self._soon = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._in_flight is not None or not self._pending.size:
            return
        batch, self._pending = self._pending, Batch()
        self._in_flight = batch
        ops = batch.close(self._flying)
        now = time.monotonic()
        announce = now - self._announced >= HEARTBEAT_SECONDS
        if announce:
            self._announced = now
        args = (ops, PREFIX, self._process, PROCESS_STALE_SECONDS, int(announce))
        self._redis.send(command("EVALSHA", _SHA, 0, *args), lambda reply: self._answered(batch, args, reply))

    def _answered(self, batch: Batch, args: tuple[bytes | str | int, ...], reply: Any) -> None:
        if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
            # Redis lost its script cache (a restart, SCRIPT FLUSH): EVAL sends the script and caches it
            self._redis.send(command("EVAL", _SCRIPT, 0, *args), lambda reply: self._answered(batch, args, reply))
            return
        try:
            if isinstance(reply, Exception):
                self._fail(batch, reply)
            else:
                self._apply(batch, reply)
        finally:
            self._in_flight = None
        if self._pending.size:
            pending = self._pending
            self._schedule(waited=bool(pending.admissions or pending.seeds) or self._drained is not None)
        elif self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _apply(self, batch: Batch, answer: list[Any]) -> None:
        self._healthy = True
        now = self._clock()
        self._mirror.learn(batch, answer, totals_of(self._pending.groups), self._flying, now)
        for seeded in batch.seeded:
            if not seeded.done():
                seeded.set_result(None)
        for (admission, _), future, verdict in zip(batch.admissions, batch.verdicts, answer[3] or (), strict=True):
            admitted = verdict[0] == ADMITTED
            if not future.done():
                future.set_result(verdict)
                for key, slots in admission.flights if admitted else ():
                    _fly(self._flying, key, slots)
            elif admitted:  # its caller is gone (cancelled): the next batch sets the counts without it
                for key, slots in admission.flights:
                    self._flying.setdefault(key, [0, slots])
                    self._pending.flights[key] = None

    def _fail(self, batch: Batch, exc: Exception) -> None:
        self._healthy = False
        self._announced = -math.inf  # the batch may not have reached Redis: the next one announces again
        for future in (*batch.seeded, *batch.verdicts):
            if not future.done():
                future.set_exception(exc)
        self._lost.update(batch.flights)  # the next heartbeat sends them again
        for admission, _ in batch.admissions:  # Redis may have counted them before the failure
            for key, slots in admission.flights:
                self._flying.setdefault(key, [0, slots])
                self._lost.add(key)
        if batch.unwaited:  # calls already let in and settlements, which nobody waits for: count and log the loss
            self._on_failure()
            log.warning("limit store unavailable; %d updates lost (%s: %s)", batch.unwaited, type(exc).__name__, exc)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self._send()
        if self._in_flight is not None:
            self._drained = asyncio.get_running_loop().create_future()
            await asyncio.wait([self._drained], timeout=2)
        await self._redis.close()

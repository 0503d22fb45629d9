"""Limit state in Redis, so every gateway process shares it: each operation is one atomic script.

Time comes from Redis (TIME), so processes on different hosts agree. Calls have short timeouts; the
limiter decides what a failure means (storage.redis_policy).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

from openfoundry.limits.store import Level, Take

PREFIX = "foundry:"

_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local levels, ok = {}, 1
for i = 1, #KEYS do
  local capacity, cost = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 't', 'ts')
  local tokens, ts = tonumber(state[1]), tonumber(state[2])
  if tokens == nil then tokens, ts = capacity, now end
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * capacity / 60)
  levels[i] = tokens
  if tokens < cost then ok = 0 end
end
if ok == 1 then
  for i = 1, #KEYS do
    levels[i] = levels[i] - tonumber(ARGV[2 * i])
    redis.call('HSET', KEYS[i], 't', tostring(levels[i]), 'ts', tostring(now))
    redis.call('EXPIRE', KEYS[i], 120)
  end
end
local out = {ok}
for i = 1, #KEYS do out[i + 1] = tostring(levels[i]) end
return out
"""

_ADJUST = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local capacity, amount = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, ts = capacity, now end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * capacity / 60 + amount)
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return 1
"""

# A ZSET of tickets scored by entry time; entries older than 10 minutes are a crashed process's
# leftovers and no longer count.
_ENTER = """
local now = redis.call('TIME')
now = tonumber(now[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 600)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('EXPIRE', KEYS[1], 600)
return 1
"""

_SPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[2]) end
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])))
return total
"""


class RedisStore:
    def __init__(self, url: str, timeout: float = 0.25) -> None:
        self.client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self._take = self.client.register_script(_TAKE)
        self._adjust = self.client.register_script(_ADJUST)
        self._enter = self.client.register_script(_ENTER)
        self._spend = self.client.register_script(_SPEND)

    async def take(self, takes: list[Take], now: float) -> tuple[bool, list[Level]]:
        args: list[float] = []
        for take in takes:
            args += [take.capacity, take.cost]
        result = await self._take(keys=[PREFIX + t.key for t in takes], args=args)
        levels = [Level(float(value), t.capacity) for value, t in zip(result[1:], takes, strict=True)]
        return result[0] == 1, levels

    async def adjust(self, key: str, capacity: float, amount: float, now: float) -> None:
        await self._adjust(keys=[PREFIX + key], args=[capacity, amount])

    async def enter(self, key: str, limit: int, ticket: str, now: float) -> bool:
        return bool(await self._enter(keys=[PREFIX + key], args=[limit, ticket]) == 1)

    async def leave(self, key: str, ticket: str) -> None:
        await self.client.zrem(PREFIX + key, ticket)

    async def spent(self, key: str) -> float | None:
        value = await self.client.get(PREFIX + key)
        return None if value is None else float(value)

    async def spend(self, key: str, amount: float, initial: float, ttl: float) -> None:
        await self._spend(keys=[PREFIX + key], args=[amount, initial, ttl])

    async def close(self) -> None:
        await self.client.aclose()

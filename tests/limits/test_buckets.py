"""Token buckets and admission, on the memory store and (when FOUNDRY_TEST_REDIS is set) on Redis."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from openfoundry.limits.redis import RedisStore
from openfoundry.limits.store import LimitStore, MemoryStore, Take

STORES = ["memory"] + (["redis"] if os.environ.get("FOUNDRY_TEST_REDIS") else [])


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LimitStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = os.environ["FOUNDRY_TEST_REDIS"].rsplit("/", 1)[0] + "/15"
    client = redis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    shared = RedisStore(url)
    yield shared
    await shared.close()


async def test_takes_all_or_nothing(store: LimitStore) -> None:
    allowed, levels = await store.take([Take("a", 10, 4), Take("b", 5, 4)], 1000.0)
    assert allowed and [round(level.remaining) for level in levels] == [6, 1]
    allowed, levels = await store.take([Take("a", 10, 4), Take("b", 5, 4)], 1000.0)
    assert not allowed
    allowed, levels = await store.take([Take("a", 10, 6)], 1000.0)
    assert allowed  # the refused take left bucket "a" untouched
    assert round(levels[0].remaining) == 0


async def test_adjust_gives_back_and_takes_more(store: LimitStore) -> None:
    await store.take([Take("t", 1000, 900)], 1000.0)
    await store.adjust("t", 1000, 850, 1000.0)  # estimated 900, used 50
    allowed, levels = await store.take([Take("t", 1000, 900)], 1000.0)
    assert allowed and 45 <= levels[0].remaining <= 60
    await store.adjust("t", 1000, -100, 1000.0)  # used more than estimated
    allowed, _ = await store.take([Take("t", 1000, 1)], 1000.0)
    assert not allowed


async def test_concurrency_slots(store: LimitStore) -> None:
    assert await store.enter("c", 2, "one", 1000.0)
    assert await store.enter("c", 2, "two", 1000.0)
    assert not await store.enter("c", 2, "three", 1000.0)
    await store.leave("c", "one")
    assert await store.enter("c", 2, "three", 1000.0)


async def test_spend_starts_from_the_database_figure(store: LimitStore) -> None:
    assert await store.spent("s") is None
    await store.spend("s", 0.0, 2.5, 3600)
    await store.spend("s", 0.25, 0.0, 3600)
    assert await store.spent("s") == pytest.approx(2.75)

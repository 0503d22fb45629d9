"""Token buckets and admission, on the memory store and (when FOUNDRY_TEST_REDIS is set) on Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from openfoundry.limits.redis import RedisStore
from openfoundry.limits.store import (
    ADMITTED,
    OVER_BUDGET,
    RATE_LIMITED,
    TOO_MANY_IN_FLIGHT,
    UNSEEDED,
    Admission,
    LimitStore,
    MemoryStore,
    Settlement,
)

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


def takes(*items: tuple[str, float, float]) -> Admission:
    return Admission(uuid.uuid4().hex, (), (), items)


async def test_takes_all_or_nothing(store: LimitStore) -> None:
    verdict = await store.admit(takes(("a", 10, 4), ("b", 5, 4)), 1000.0)
    assert verdict.outcome == ADMITTED and [round(level) for level in verdict.levels] == [6, 1]
    verdict = await store.admit(takes(("a", 10, 4), ("b", 5, 4)), 1000.0)
    assert verdict.outcome == RATE_LIMITED and [round(level) for level in verdict.levels] == [6, 1]
    verdict = await store.admit(takes(("a", 10, 6)), 1000.0)
    assert verdict.outcome == ADMITTED  # the refused take left bucket "a" untouched
    assert round(verdict.levels[0]) == 0


async def test_settling_gives_back_and_takes_more_tokens(store: LimitStore) -> None:
    await store.admit(takes(("t", 1000, 900)), 1000.0)
    await store.settle(Settlement("x", (("t", 1000, 850),), (), (), 0.0), 1000.0)  # estimated 900, used 50
    verdict = await store.admit(takes(("t", 1000, 900)), 1000.0)
    assert verdict.outcome == ADMITTED and 45 <= verdict.levels[0] <= 60
    await store.settle(Settlement("y", (("t", 1000, -100),), (), (), 0.0), 1000.0)  # used more than estimated
    assert (await store.admit(takes(("t", 1000, 1)), 1000.0)).outcome == RATE_LIMITED


async def test_concurrency_slots(store: LimitStore) -> None:
    def enter(ticket: str) -> Admission:
        return Admission(ticket, (), (("other", 5), ("c", 2)), ())

    assert (await store.admit(enter("one"), 1000.0)).outcome == ADMITTED
    assert (await store.admit(enter("two"), 1000.0)).outcome == ADMITTED
    refused = await store.admit(enter("three"), 1000.0)
    assert (refused.outcome, refused.which) == (TOO_MANY_IN_FLIGHT, 1)
    await store.settle(Settlement("one", (), ("other", "c"), (), 0.0), 1000.0)
    assert (await store.admit(enter("three"), 1000.0)).outcome == ADMITTED


async def test_budget_spend_starts_from_the_database_figure(store: LimitStore) -> None:
    spend = Admission("a", (("free", 100.0), ("s", 3.0)), (), ())
    await store.seed("free", 0.0, 3600)
    unseeded = await store.admit(spend, 1000.0)
    assert (unseeded.outcome, unseeded.which) == (UNSEEDED, 1)
    await store.seed("s", 2.5, 3600)
    await store.seed("s", 0.0, 3600)  # a second seed (another process's) does not reset it
    assert (await store.admit(spend, 1000.0)).outcome == ADMITTED
    await store.settle(Settlement("a", (), (), (("free", 3600), ("s", 3600)), 0.25), 1000.0)
    assert (await store.admit(spend, 1000.0)).outcome == ADMITTED
    await store.settle(Settlement("b", (), (), (("free", 3600), ("s", 3600)), 0.25), 1000.0)
    over = await store.admit(spend, 1000.0)
    assert (over.outcome, over.which, over.spent) == (OVER_BUDGET, 1, pytest.approx(3.0))


async def test_a_refusal_takes_nothing(store: LimitStore) -> None:
    await store.seed("spent", 5.0, 3600)
    over = Admission("x", (("spent", 1.0),), (("slots", 1),), (("r", 10, 1),))
    assert (await store.admit(over, 1000.0)).outcome == OVER_BUDGET
    verdict = await store.admit(Admission("y", (), (("slots", 1),), (("r", 10, 1),)), 1000.0)
    assert verdict.outcome == ADMITTED and round(verdict.levels[0]) == 9


@pytest.fixture
async def shared_stores() -> AsyncIterator[list[RedisStore]]:
    """Two stores on one Redis db, as two gateway processes see it."""
    if not os.environ.get("FOUNDRY_TEST_REDIS"):
        pytest.skip("needs FOUNDRY_TEST_REDIS")
    url = os.environ["FOUNDRY_TEST_REDIS"].rsplit("/", 1)[0] + "/15"
    client = redis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    stores = [RedisStore(url), RedisStore(url)]
    yield stores
    for store in stores:
        await store.close()


async def test_far_from_its_limits_a_call_does_not_wait_for_redis_yet_redis_counts_it(
    shared_stores: list[RedisStore],
) -> None:
    store = shared_stores[0]
    first = await store.admit(takes(("wide", 1000, 1)), 0.0)  # nothing known yet: waits for Redis
    assert first.outcome == ADMITTED
    for _ in range(50):
        admission = store.admit(takes(("wide", 1000, 1)), 0.0)
        with pytest.raises(StopIteration) as answered:
            admission.send(None)  # it finishes without suspending: no wait for Redis
        assert answered.value.value.outcome == ADMITTED
    await store.close()  # sends what is still queued (otherwise sent within milliseconds)
    other = await shared_stores[1].admit(takes(("wide", 1000, 0)), 0.0)
    assert round(other.levels[0]) == 949  # the other process sees all 51 takes


async def test_near_a_shared_limit_every_call_waits_for_redis_so_two_processes_do_not_overshoot(
    shared_stores: list[RedisStore],
) -> None:
    allowed = 0
    for turn in range(300):
        verdict = await shared_stores[turn % 2].admit(takes(("narrow", 200, 1)), 0.0)
        allowed += verdict.outcome == ADMITTED
    assert 200 <= allowed <= 203  # the capacity plus what refills in the test's own second or so


async def test_calls_let_in_and_settled_in_one_batch_add_up_exactly(shared_stores: list[RedisStore]) -> None:
    store = shared_stores[0]

    def call(ticket: str) -> Admission:
        return Admission(ticket, (), (("slots", 1000),), (("calls", 1000, 1), ("tokens", 100_000, 100)))

    assert (await store.admit(call("first"), 0.0)).outcome == ADMITTED  # waits: nothing heard yet
    for number in range(50):
        assert (await store.admit(call(f"t{number}"), 0.0)).outcome == ADMITTED
    for number in range(20):  # each used 40 of its 100 estimated tokens
        await store.settle(Settlement(f"t{number}", (("tokens", 100_000, 60),), ("slots",), (), 0.0), 0.0)
    await store.close()
    client = redis.Redis.from_url(os.environ["FOUNDRY_TEST_REDIS"].rsplit("/", 1)[0] + "/15")
    in_flight = {ticket.decode() for ticket in await client.zrange("foundry:slots", 0, -1)}
    await client.aclose()
    assert in_flight == {"first"} | {f"t{number}" for number in range(20, 50)}
    seen = await shared_stores[1].admit(Admission("probe", (), (), (("calls", 1000, 0), ("tokens", 100_000, 0))), 0.0)
    calls, tokens = seen.levels  # exact, but for what the buckets refill meanwhile (a second's worth at most)
    assert 949 <= calls < 949 + 1000 / 60 and 96_100 <= tokens < 96_100 + 100_000 / 60


async def test_the_script_is_sent_again_when_redis_has_forgotten_it(shared_stores: list[RedisStore]) -> None:
    store = shared_stores[0]
    assert (await store.admit(takes(("x", 10, 1)), 0.0)).outcome == ADMITTED
    client = redis.Redis.from_url(os.environ["FOUNDRY_TEST_REDIS"])
    await client.script_flush()
    await client.aclose()
    verdict = await store.admit(takes(("x", 10, 9.5)), 0.0)  # near the limit: waits for Redis's verdict
    assert verdict.outcome == RATE_LIMITED and round(verdict.levels[0]) == 9

"""Token buckets and admission, on the memory store and (when FOUNDRY_TEST_REDIS is set) on Redis."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as redis

from openfoundry.limits import redis as limits_redis
from openfoundry.limits.redis import PROCESS_STALE_SECONDS, RedisStore
from openfoundry.limits.store import (
    ADMITTED,
    OVER_BUDGET,
    RATE_LIMITED,
    TOO_MANY_IN_FLIGHT,
    UNSEEDED,
    Admission,
    LimitStore,
    MemoryStore,
    Rate,
    Settlement,
    Verdict,
)

STORES = ["memory"] + (["redis"] if os.environ.get("FOUNDRY_TEST_REDIS") else [])


def shared_db() -> str:
    """The Redis db the shared-store tests use (flushed by their fixtures)."""
    return os.environ["FOUNDRY_TEST_REDIS"].rsplit("/", 1)[0] + "/15"


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LimitStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = shared_db()
    client = redis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    shared = RedisStore(url)
    yield shared
    await shared.close()


def admission(
    budgets: tuple[tuple[str, float], ...] = (),
    flights: tuple[tuple[str, int], ...] = (),
    requests: tuple[Rate, ...] = (),
    token_buckets: tuple[Rate, ...] = (),
) -> Admission:
    """An admission in the group of every admission with the same limits."""
    return Admission(budgets, flights, requests, token_buckets, hash((budgets, flights, requests, token_buckets)))


def settlement(
    token_buckets: tuple[Rate, ...] = (), flights: tuple[str, ...] = (), spends: tuple[tuple[str, float], ...] = ()
) -> Settlement:
    return Settlement(token_buckets, flights, spends, hash((token_buckets, flights, spends)))


def requests(*buckets: Rate) -> Admission:
    return admission(requests=buckets)


def tokens(*buckets: Rate) -> Admission:
    return admission(token_buckets=buckets)


def levels(verdict: Verdict, *capacities: float) -> list[float]:
    """What each bucket holds, from the seconds it needs to fill again."""
    return [capacity - refill * capacity / 60 for refill, capacity in zip(verdict.refills, capacities, strict=True)]


def rounded(verdict: Verdict, *capacities: float) -> list[int]:
    return [round(level) for level in levels(verdict, *capacities)]


async def test_takes_all_or_nothing(store: LimitStore) -> None:
    verdict = await store.admit(tokens(("a", 10), ("b", 5)), 4, 1000.0)
    assert verdict.outcome == ADMITTED and rounded(verdict, 10, 5) == [6, 1]
    verdict = await store.admit(tokens(("a", 10), ("b", 5)), 4, 1000.0)
    assert verdict.outcome == RATE_LIMITED and rounded(verdict, 10, 5) == [6, 1]
    verdict = await store.admit(admission(requests=(("r", 10),), token_buckets=(("b", 5),)), 4, 1000.0)
    assert verdict.outcome == RATE_LIMITED and rounded(verdict, 10, 5) == [10, 1]
    verdict = await store.admit(admission(requests=(("r", 10),), token_buckets=(("a", 10),)), 6, 1000.0)
    assert verdict.outcome == ADMITTED  # the refused takes left buckets "a" and "r" untouched
    assert rounded(verdict, 10, 10) == [9, 0]


def test_a_memory_bucket_refills_at_its_capacity_per_minute() -> None:
    store = MemoryStore()
    ten = requests(("ten", 10))  # a call each 6 s
    assert all(store.admit_now(ten, 0, 1000.0).outcome == ADMITTED for _ in range(10))
    refused = store.admit_now(ten, 0, 1000.0)
    assert refused.outcome == RATE_LIMITED and refused.refills == (60.0,)
    assert store.admit_now(ten, 0, 1005.9).outcome == RATE_LIMITED  # not quite one call's worth yet
    admitted = store.admit_now(ten, 0, 1006.0)
    assert admitted.outcome == ADMITTED and admitted.refills == (60.0,)
    assert store.admit_now(ten, 0, 1100.0).refills == (6.0,)  # full again after a minute; one call taken


async def test_settling_gives_back_and_takes_more_tokens(store: LimitStore) -> None:
    await store.admit(tokens(("t", 1000)), 900, 1000.0)
    store.settle(settlement((("t", 1000),)), 850, 0.0, 1000.0)  # estimated 900, used 50
    verdict = await store.admit(tokens(("t", 1000)), 900, 1000.0)
    assert verdict.outcome == ADMITTED and 45 <= levels(verdict, 1000)[0] <= 60
    store.settle(settlement((("t", 1000),)), -100, 0.0, 1000.0)  # used more than estimated
    assert (await store.admit(tokens(("t", 1000)), 1, 1000.0)).outcome == RATE_LIMITED


async def test_concurrency_slots(store: LimitStore) -> None:
    enter = admission(flights=(("other", 5), ("c", 2)))
    assert (await store.admit(enter, 0, 1000.0)).outcome == ADMITTED
    assert (await store.admit(enter, 0, 1000.0)).outcome == ADMITTED
    refused = await store.admit(enter, 0, 1000.0)
    assert (refused.outcome, refused.which) == (TOO_MANY_IN_FLIGHT, 1)
    store.settle(settlement(flights=("other", "c")), 0, 0.0, 1000.0)
    assert (await store.admit(enter, 0, 1000.0)).outcome == ADMITTED
    assert (await store.admit(enter, 0, 1000.0)).outcome == TOO_MANY_IN_FLIGHT


async def test_budget_spend_starts_from_the_database_figure(store: LimitStore) -> None:
    spend = admission((("free", 100.0), ("s", 3.0)))
    await store.seed("free", 0.0, 3600)
    unseeded = await store.admit(spend, 0, 1000.0)
    assert (unseeded.outcome, unseeded.which) == (UNSEEDED, 1)
    await store.seed("s", 2.5, 3600)
    await store.seed("s", 0.0, 3600)  # a second seed (another process's) does not reset it
    assert (await store.admit(spend, 0, 1000.0)).outcome == ADMITTED
    store.settle(settlement(spends=(("free", 3600), ("s", 3600))), 0, 0.25, 1000.0)
    assert (await store.admit(spend, 0, 1000.0)).outcome == ADMITTED
    store.settle(settlement(spends=(("free", 3600), ("s", 3600))), 0, 0.25, 1000.0)
    over = await store.admit(spend, 0, 1000.0)
    assert (over.outcome, over.which, over.spent) == (OVER_BUDGET, 1, pytest.approx(3.0))


async def test_a_refusal_takes_nothing(store: LimitStore) -> None:
    await store.seed("spent", 5.0, 3600)
    over = admission((("spent", 1.0),), (("slots", 1),), (("r", 10),))
    assert (await store.admit(over, 0, 1000.0)).outcome == OVER_BUDGET
    verdict = await store.admit(admission(flights=(("slots", 1),), requests=(("r", 10),)), 0, 1000.0)
    assert verdict.outcome == ADMITTED and rounded(verdict, 10) == [9]


@pytest.fixture
async def shared_stores() -> AsyncIterator[list[RedisStore]]:
    """Two stores on one Redis db, as two gateway processes see it."""
    if not os.environ.get("FOUNDRY_TEST_REDIS"):
        pytest.skip("needs FOUNDRY_TEST_REDIS")
    url = shared_db()
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
    first = await store.admit(requests(("wide", 1000)), 0, 0.0)  # nothing known yet: waits for Redis
    assert first.outcome == ADMITTED
    for _ in range(50):
        admission = store.admit(requests(("wide", 1000)), 0, 0.0)
        with pytest.raises(StopIteration) as answered:
            admission.send(None)  # it finishes without suspending: no wait for Redis
        assert answered.value.value.outcome == ADMITTED
    await store.close()  # sends what is still queued (otherwise sent within milliseconds)
    other = await shared_stores[1].admit(tokens(("wide", 1000)), 0, 0.0)
    assert rounded(other, 1000) == [949]  # the other process sees all 51 takes


async def test_news_older_than_a_second_makes_a_call_wait_for_redis_again(shared_stores: list[RedisStore]) -> None:
    clock = [time.time()]
    store = RedisStore(shared_db(), clock=lambda: clock[0])
    wide = requests(("wide", 1000))
    assert store.admit_now(wide, 0, 0.0) is None  # nothing heard yet
    assert (await store.admit(wide, 0, 0.0)).outcome == ADMITTED
    assert store.admit_now(wide, 0, 0.0) is not None
    clock[0] += limits_redis.FRESH_SECONDS + 0.1
    assert store.admit_now(wide, 0, 0.0) is None  # what it knows of the limit is stale
    assert (await store.admit(wide, 0, 0.0)).outcome == ADMITTED
    assert store.admit_now(wide, 0, 0.0) is not None  # the answer was news
    await store.close()


async def test_a_bucket_in_redis_is_the_time_it_is_full_again_and_expires_soon_after(
    shared_stores: list[RedisStore],
) -> None:
    store = shared_stores[0]
    assert (await store.admit(tokens(("half", 10)), 5, 0.0)).outcome == ADMITTED
    client = redis.Redis.from_url(shared_db())
    full_at = float(await client.get("foundry:full-at:half") or 0)
    expires_in = await client.pttl("foundry:full-at:half")
    await client.aclose()
    assert 29 < full_at - time.time() <= 30  # 5 of 10 a minute: full again in 30 s
    assert 30_000 < expires_in <= 31_000  # then a second to spare


async def test_a_call_that_ends_gives_its_slot_back_to_the_room_at_once(shared_stores: list[RedisStore]) -> None:
    store = shared_stores[0]
    enter = admission(flights=(("hundred", 100),))  # room: at most 5 (half of the 10% margin) between answers
    assert (await store.admit(enter, 0, 0.0)).outcome == ADMITTED  # waits: nothing heard yet
    leave = settlement(flights=("hundred",))
    for _ in range(50):  # no await: no answer from Redis comes in between
        assert store.admit_now(enter, 0, 0.0) is not None
        store.settle(leave, 0, 0.0, 0.0)
    let_in = [store.admit_now(enter, 0, 0.0) is not None for _ in range(10)]
    assert let_in == [True] * 5 + [False] * 5  # 5 more in flight: then calls wait for Redis


async def test_near_a_shared_limit_every_call_waits_for_redis_so_two_processes_do_not_overshoot(
    shared_stores: list[RedisStore],
) -> None:
    allowed = 0
    for turn in range(300):
        verdict = await shared_stores[turn % 2].admit(requests(("narrow", 200)), 0, 0.0)
        allowed += verdict.outcome == ADMITTED
    assert 200 <= allowed <= 203  # the capacity plus what refills in the test's own second or so


async def test_calls_let_in_and_settled_in_one_batch_add_up_exactly(shared_stores: list[RedisStore]) -> None:
    store = shared_stores[0]

    call = admission(flights=(("slots", 1000),), requests=(("calls", 1000),), token_buckets=(("tokens", 100_000),))
    assert (await store.admit(call, 100, 0.0)).outcome == ADMITTED  # waits: nothing heard yet
    for _ in range(50):
        assert (await store.admit(call, 100, 0.0)).outcome == ADMITTED
    for _ in range(20):  # each used 40 of its 100 estimated tokens
        store.settle(settlement((("tokens", 100_000),), ("slots",)), 60, 0.0, 0.0)
    await store.close()
    client = redis.Redis.from_url(shared_db())
    in_flight = await client.hvals("foundry:slots")
    await client.aclose()
    assert in_flight == [b"31"]  # this process's count: the first call and the 30 not settled
    seen = await shared_stores[1].admit(tokens(("calls", 1000), ("tokens", 100_000)), 0, 0.0)
    calls, tokens_left = levels(seen, 1000, 100_000)  # exact, but for what refills meanwhile (a second at most)
    assert 949 <= calls < 949 + 1000 / 60 and 96_100 <= tokens_left < 96_100 + 100_000 / 60


async def test_a_cost_on_a_spend_redis_does_not_hold_starts_it_with_an_expiry(shared_stores: list[RedisStore]) -> None:
    store = shared_stores[0]
    await store.seed("spend:seeded", 1.0, 7200)
    store.settle(settlement(spends=(("spend:seeded", 3600.0), ("spend:absent", 3600.0))), 0, 0.25, 0.0)
    await store.close()
    client = redis.Redis.from_url(shared_db())
    seeded, absent = await client.mget("foundry:spend:seeded", "foundry:spend:absent")
    ttls = [await client.ttl("foundry:spend:seeded"), await client.ttl("foundry:spend:absent")]
    await client.aclose()
    assert (float(seeded or 0), float(absent or 0)) == (1.25, 0.25)
    assert 7100 < ttls[0] <= 7200 and 3500 < ttls[1] <= 3600  # the seeded one keeps the expiry of its seed


async def test_a_batch_touching_thousands_of_limits_is_applied_whole(shared_stores: list[RedisStore]) -> None:
    url = shared_db()
    failures = []
    store = RedisStore(url, on_failure=lambda: failures.append(1))
    for n in range(3000):  # no await: one batch, 9,000 bucket keys to read (Lua unpacks a few thousand at once)
        buckets = tuple((f"many:{n}:{i}", 1000.0) for i in range(3))
        store.settle(settlement(buckets), -10, 0.0, 0.0)  # each call used 10 tokens more than estimated
    await store.close()
    client = redis.Redis.from_url(url)
    full_at = await client.get("foundry:full-at:many:2999:2")
    await client.aclose()
    assert failures == [] and 0.5 < float(full_at or 0) - time.time() <= 0.6  # 10 of 1000 a minute: 0.6 s


async def test_the_script_is_sent_again_when_redis_has_forgotten_it(shared_stores: list[RedisStore]) -> None:
    store = shared_stores[0]
    assert (await store.admit(tokens(("x", 10)), 1, 0.0)).outcome == ADMITTED
    client = redis.Redis.from_url(os.environ["FOUNDRY_TEST_REDIS"])
    await client.script_flush()
    await client.aclose()
    verdict = await store.admit(tokens(("x", 10)), 9.5, 0.0)  # near the limit: waits for Redis's verdict
    assert verdict.outcome == RATE_LIMITED and rounded(verdict, 10) == [9]


async def until(condition: Callable[[], Awaitable[bool]], seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.01)


async def test_a_dead_process_s_calls_in_flight_stop_counting(shared_stores: list[RedisStore]) -> None:
    holder, other = shared_stores
    enter = admission(flights=(("pair", 2),))
    for _ in range(2):
        assert (await holder.admit(enter, 0, 0.0)).outcome == ADMITTED
    assert (await other.admit(enter, 0, 0.0)).outcome == TOO_MANY_IN_FLIGHT
    client = redis.Redis.from_url(shared_db())
    [holder_id, other_id] = await client.zrange("foundry:processes", 0, -1)  # by time: the holder spoke first
    await client.zadd("foundry:processes", {holder_id: time.time() - PROCESS_STALE_SECONDS - 1})  # silent: dead
    assert (await other.admit(enter, 0, 0.0)).outcome == ADMITTED
    assert await client.hgetall("foundry:pair") == {other_id: b"1"}
    await client.aclose()


async def test_a_process_announcing_itself_clears_the_dead_ones_out(
    shared_stores: list[RedisStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits_redis, "HEARTBEAT_SECONDS", 0.0)  # every batch announces
    store = shared_stores[0]
    client = redis.Redis.from_url(shared_db())
    await client.zadd("foundry:processes", {"gone": time.time() - PROCESS_STALE_SECONDS - 1, "alive": time.time()})
    assert (await store.admit(admission(flights=(("pair", 2),)), 0, 0.0)).outcome == ADMITTED
    members = await client.zrange("foundry:processes", 0, -1)
    await client.aclose()
    assert b"gone" not in members and b"alive" in members and len(members) == 2  # and the store itself


async def test_a_live_process_sends_its_calls_in_flight_again_and_again(
    shared_stores: list[RedisStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits_redis, "HEARTBEAT_SECONDS", 0.02)
    holder, other = shared_stores
    enter = admission(flights=(("pair", 2),))
    for _ in range(2):
        assert (await holder.admit(enter, 0, 0.0)).outcome == ADMITTED
    client = redis.Redis.from_url(shared_db())
    [holder_id] = await client.zrange("foundry:processes", 0, -1)
    silent_since = time.time() - PROCESS_STALE_SECONDS - 1
    await client.zadd("foundry:processes", {holder_id: silent_since})
    await client.delete("foundry:pair")  # as if another process had taken it for dead

    async def told_again() -> bool:
        score = await client.zscore("foundry:processes", holder_id)
        return score is not None and score > silent_since and await client.hget("foundry:pair", holder_id) == b"2"

    await until(told_again)  # with no call at all, only its heartbeat speaks
    assert (await other.admit(enter, 0, 0.0)).outcome == TOO_MANY_IN_FLIGHT
    holder.settle(settlement(flights=("pair",)), 0, 0.0, 0.0)

    async def one_left() -> bool:
        return await client.hget("foundry:pair", holder_id) == b"1"

    await until(one_left)
    assert (await other.admit(enter, 0, 0.0)).outcome == ADMITTED
    await client.aclose()


async def test_a_call_admitted_after_its_caller_left_does_not_hold_a_slot(shared_stores: list[RedisStore]) -> None:
    store = shared_stores[0]
    enter = admission(flights=(("single", 1),))
    abandoned = asyncio.create_task(store.admit(enter, 0, 0.0))
    await asyncio.sleep(0)  # one turn of the loop: the admission is queued for Redis
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert (await store.admit(enter, 0, 0.0)).outcome == ADMITTED  # Redis let the abandoned call in, then forgot it
    assert (await store.admit(enter, 0, 0.0)).outcome == TOO_MANY_IN_FLIGHT

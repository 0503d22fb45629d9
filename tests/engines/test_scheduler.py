"""The engine's admission queue: bounded, fair between callers, with a wait limit."""

from __future__ import annotations

import asyncio

import pytest

from openfoundry.engines.scheduler import Scheduler
from openfoundry.errors import RateLimited


async def _take(scheduler: Scheduler, who: str, order: list[str]) -> None:
    granted = await scheduler.acquire(who)
    order.append(who)
    await asyncio.sleep(0)
    scheduler.release(granted)


async def test_freed_slots_go_to_callers_in_turn() -> None:
    scheduler = Scheduler("e", slots=1, max_queue=10, queue_timeout=5)
    held = await scheduler.acquire()
    order: list[str] = []
    tasks = [asyncio.create_task(_take(scheduler, who, order)) for who in ("a", "a", "a", "b", "c")]
    await asyncio.sleep(0)  # one turn of the loop: every task runs until it waits in the queue
    assert scheduler.queued == 5
    scheduler.release(held)
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c", "a", "a"]  # a's backlog does not starve b and c
    assert scheduler.free == 1 and scheduler.queued == 0


async def test_a_full_queue_refuses_with_retry_after() -> None:
    scheduler = Scheduler("e", slots=1, max_queue=1, queue_timeout=5)
    held = await scheduler.acquire()
    waiting = asyncio.create_task(scheduler.acquire())
    await asyncio.sleep(0)
    with pytest.raises(RateLimited) as refused:
        await scheduler.acquire()
    assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
    scheduler.release(held)
    scheduler.release(await waiting)
    assert scheduler.free == 1 and scheduler.rejected == 1


async def test_a_wait_past_queue_timeout_is_refused_and_leaves_the_queue() -> None:
    scheduler = Scheduler("e", slots=1, max_queue=4, queue_timeout=0.05)
    held = await scheduler.acquire()
    with pytest.raises(RateLimited, match="queue_timeout"):
        await scheduler.acquire()
    assert scheduler.queued == 0
    scheduler.release(held)
    assert scheduler.free == 1


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    scheduler = Scheduler("e", slots=1, max_queue=4, queue_timeout=5)
    held = await scheduler.acquire()
    waiter = asyncio.create_task(scheduler.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert scheduler.queued == 0
    scheduler.release(held)
    assert scheduler.free == 1

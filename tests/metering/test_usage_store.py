"""Usage queries on SQLite and PostgreSQL: sums per group, days in UTC, filters, and spend for budgets."""

from __future__ import annotations

import datetime as dt

import pytest

from openfoundry.store.usage import UsageFilter, UsageStore
from tests.metering.conftest import usage

DAY1 = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 3, 2, 0, 30, tzinfo=dt.UTC)


async def fill(store: UsageStore) -> None:
    await store.insert(
        [
            usage("alpha", ts=DAY1.timestamp(), key_id="k1", cost_usd=1.0).to_dict(),
            usage("alpha", ts=DAY2.timestamp(), key_id="k1", cost_usd=2.0, deployment="grok").to_dict(),
            usage("alpha", ts=DAY2.timestamp(), key_id="k2", cost_usd=4.0, status=502, prompt_tokens=0).to_dict(),
            usage("beta", ts=DAY2.timestamp(), key_id="k3", cost_usd=8.0, reasoning_tokens=7).to_dict(),
            usage(None, ts=DAY2.timestamp(), key_id=None, cost_usd=16.0).to_dict(),  # the admin key
        ]
    )


async def test_without_groups_one_total_row(store: UsageStore) -> None:
    assert await store.summary(UsageFilter()) == [
        {
            "project": None,
            "key_id": None,
            "deployment": None,
            "day": None,
            "requests": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "cost_usd": 0.0,
            "errors": 0,
        }
    ]
    await fill(store)
    [total] = await store.summary(UsageFilter())
    assert (total["requests"], total["prompt_tokens"], total["completion_tokens"]) == (5, 12, 25)
    assert (total["reasoning_tokens"], total["cost_usd"], total["errors"]) == (7, 31.0, 1)


async def test_groups_and_days_in_utc(store: UsageStore) -> None:
    await fill(store)
    by_day = await store.summary(UsageFilter(), ["day"])
    assert [(row["day"], row["requests"], row["cost_usd"]) for row in by_day] == [
        ("2026-03-01", 1, 1.0),
        ("2026-03-02", 4, 30.0),
    ]
    by_project = {row["project"]: row for row in await store.summary(UsageFilter(), ["project"])}
    assert {name: row["cost_usd"] for name, row in by_project.items()} == {"alpha": 7.0, "beta": 8.0, None: 16.0}
    assert by_project["alpha"]["errors"] == 1 and by_project["alpha"]["key_id"] is None
    pairs = await store.summary(UsageFilter(project="alpha"), ["key", "day"])
    assert [(row["key_id"], row["day"], row["requests"]) for row in pairs] == [
        ("k1", "2026-03-01", 1),
        ("k1", "2026-03-02", 1),
        ("k2", "2026-03-02", 1),
    ]
    by_deployment = await store.summary(UsageFilter(key_id="k1"), ["deployment"])
    assert [(row["deployment"], row["requests"]) for row in by_deployment] == [("gpt", 1), ("grok", 1)]


async def test_time_filters_take_any_zone(store: UsageStore) -> None:
    await fill(store)
    paris = dt.timezone(dt.timedelta(hours=1))
    since = dt.datetime(2026, 3, 2, 1, 0, tzinfo=paris)  # 00:00 UTC
    [after] = await store.summary(UsageFilter(since=since))
    assert after["requests"] == 4
    [before] = await store.summary(UsageFilter(until=since))
    assert before["requests"] == 1
    [naive] = await store.summary(UsageFilter(since=dt.datetime(2026, 3, 2)))  # naive is UTC
    assert naive["requests"] == 4


async def test_spent_since_sums_a_project_or_a_key(store: UsageStore) -> None:
    await fill(store)
    day2 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert await store.spent_since("project", "alpha", day2) == 6.0
    assert await store.spent_since("project", "alpha", day2 - dt.timedelta(days=1)) == 7.0
    assert await store.spent_since("key", "k1", day2) == 2.0
    assert await store.spent_since("key", "nobody", day2) == 0.0
    with pytest.raises(ValueError):
        await store.spent_since("deployment", "gpt", day2)

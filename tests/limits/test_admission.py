"""Limits and budgets through a real gateway: each kind, the headers, budgets, Redis sharing and outages."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import redis

from tests.api.test_admin import call
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server, free_port

REDIS = os.environ.get("FOUNDRY_TEST_REDIS")


def project_with_key(server: Server, project: str, key: dict[str, Any] | None = None, **fields: Any) -> str:
    assert call(server, "POST", "/admin/projects", {"name": project, **fields})[0] == 201
    status, created = call(server, "POST", "/admin/keys", {"project": project, "name": "k", **(key or {})})
    assert status == 201, created
    return str(created["key"])


def client(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)


def ask(server: Server, key: str, model: str = "gpt", **extra: Any) -> Any:
    return client(server, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello"}], **extra
    )


@pytest.fixture
def limited(fakes: dict[str, FakeServer], tmp_path: Any) -> Iterator[Server]:
    config = gateway_config(fakes, server={"admin_key": ADMIN_KEY})
    config["deployments"]["capped"] = {
        "model": "openai/gpt-4.1-mini",
        "backends": [{"provider": "openai"}],
        "limits": {"rpm": 2},
    }
    server = Server(config).start()
    yield server
    server.stop()


def test_key_requests_per_minute_with_headers_and_retry_after(limited: Server) -> None:
    key = project_with_key(limited, "rpm", {"limits": {"rpm": 3}})
    first = ask(limited, key)
    assert first.headers["x-ratelimit-limit-requests"] == "3"
    assert first.headers["x-ratelimit-remaining-requests"] == "2"
    # a third of the bucket to refill at 3 a minute: 20 s, less what refilled since (OpenAI's format)
    assert re.fullmatch(r"19\.9\d\ds|20\.000s", first.headers["x-ratelimit-reset-requests"])
    ask(limited, key)
    ask(limited, key)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(limited, key)
    assert refused.value.code == "rate_limit_exceeded"
    assert "key" in refused.value.message and "3 requests per minute" in refused.value.message
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 20
    assert refused.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_tokens_per_minute_are_estimated_then_reconciled(limited: Server) -> None:
    key = project_with_key(limited, "tpm", {"limits": {"tpm": 2000}})
    first = ask(limited, key, max_tokens=900)  # estimate ~900 + prompt; the answer uses ~6 tokens
    assert first.headers["x-ratelimit-limit-tokens"] == "2000"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 1100
    second = ask(limited, key, max_tokens=900)  # fits only because the first was reconciled to its real use
    assert int(second.headers["x-ratelimit-remaining-tokens"]) > 900
    with pytest.raises(openai.RateLimitError) as refused:
        ask(limited, key, max_tokens=5000)
    assert "more than the key" in refused.value.message
    wide = project_with_key(limited, "tpm-wide", {"limits": {"tpm": 1_000_000}})
    taken = ask(limited, wide, max_tokens=900)  # ~910 of a million a minute: full again in ~55 ms
    assert re.fullmatch(r"[4-6]\dms", taken.headers["x-ratelimit-reset-tokens"])


def test_concurrency_limit(limited: Server, fakes: dict[str, FakeServer]) -> None:
    key = project_with_key(limited, "conc", {"limits": {"concurrency": 2}})
    fakes["openai"].app["faults"].delay = 0.5

    async def burst() -> list[int]:
        async_client = openai.AsyncOpenAI(base_url=limited.url + "/v1", api_key=key, max_retries=0)

        async def one() -> int:
            try:
                await async_client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}])
            except openai.RateLimitError as exc:
                assert exc.code == "concurrency_limit_exceeded"
                return 429
            return 200

        return await asyncio.gather(*(one() for _ in range(5)))

    assert sorted(asyncio.run(burst())) == [200, 200, 429, 429, 429]
    fakes["openai"].app["faults"].delay = 0
    assert ask(limited, key).parse().choices  # slots were given back


def test_project_and_deployment_limits_apply_to_every_key(limited: Server) -> None:
    first = project_with_key(limited, "shared", limits={"rpm": 2})
    _, other = call(limited, "POST", "/admin/keys", {"project": "shared", "name": "second"})
    ask(limited, first)
    ask(limited, str(other["key"]))
    with pytest.raises(openai.RateLimitError) as refused:
        ask(limited, first)
    assert "project 'shared'" in refused.value.message
    ask(limited, ADMIN_KEY, model="capped")
    ask(limited, ADMIN_KEY, model="capped")
    with pytest.raises(openai.RateLimitError) as capped:
        ask(limited, ADMIN_KEY, model="capped")
    assert "deployment 'capped'" in capped.value.message


def test_headers_describe_the_tightest_of_several_limits(limited: Server) -> None:
    key = project_with_key(limited, "layered", {"limits": {"rpm": 10}}, limits={"rpm": 4, "tpm": 100_000})
    first = ask(limited, key).headers
    # the key's bucket is full again in 6 s, the project's in 15 s: the project's is the tightest
    assert (first["x-ratelimit-limit-requests"], first["x-ratelimit-remaining-requests"]) == ("4", "3")
    assert first["x-ratelimit-limit-tokens"] == "100000"
    _, other = call(limited, "POST", "/admin/keys", {"project": "layered", "name": "slow", "limits": {"rpm": 2}})
    second = ask(limited, str(other["key"])).headers
    # now the new key's needs 30 s, the project's a little less (its first call is refilling)
    assert (second["x-ratelimit-limit-requests"], second["x-ratelimit-remaining-requests"]) == ("2", "1")


def test_budget_hard_limit(limited: Server) -> None:
    key = project_with_key(limited, "thrifty", budget_usd=0.000001, budget_period="day")
    ask(limited, key)  # spends more than the budget
    with pytest.raises(openai.RateLimitError) as refused:
        ask(limited, key)
    assert refused.value.code == "budget_exceeded"
    assert "project 'thrifty'" in refused.value.message and "daily budget" in refused.value.message
    assert int(refused.value.response.headers["retry-after"]) <= 86400
    assert call(limited, "PATCH", "/admin/projects/thrifty", {"budget_usd": 100})[0] == 200
    deadline = time.monotonic() + 5
    while True:  # the new budget reaches the process with the next key-ring refresh (about 1 s)
        try:
            ask(limited, key)
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline


@pytest.mark.skipif(REDIS is None, reason="needs FOUNDRY_TEST_REDIS (set by .ci/run)")
def test_a_limit_shared_by_three_processes_through_redis_holds(fakes: dict[str, FakeServer], tmp_path: Any) -> None:
    url = str(REDIS).rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(url).flushdb()
    database = f"sqlite:///{tmp_path}/shared.db"
    config = gateway_config(fakes, server={"admin_key": ADMIN_KEY}, storage={"database": database, "redis": url})
    servers = [Server(config).start() for _ in range(3)]
    try:
        key = project_with_key(servers[0], "fleet", {"limits": {"rpm": 600}})
        deadline = time.monotonic() + 5
        while any(call(s, "GET", "/v1/models", key=key)[0] != 200 for s in servers):
            assert time.monotonic() < deadline  # the key reaches the other processes within ~1 s

        async def hammer() -> tuple[int, float]:
            clients = [openai.AsyncOpenAI(base_url=s.url + "/v1", api_key=key, max_retries=0) for s in servers]
            gate = asyncio.Semaphore(24)

            async def one(number: int) -> int:
                async with gate:
                    try:
                        await clients[number % 3].chat.completions.create(
                            model="gpt", messages=[{"role": "user", "content": "x"}], max_tokens=5
                        )
                    except openai.RateLimitError:
                        return 0
                    return 1

            started = time.monotonic()
            results = await asyncio.gather(*(one(n) for n in range(1500)))
            return sum(results), time.monotonic() - started

        allowed, elapsed = asyncio.run(hammer())
        ceiling = 600 + 10 * elapsed  # the bucket's capacity plus what it refilled meanwhile
        print(f"\nallowed {allowed} of 1500 in {elapsed:.2f} s; ceiling {ceiling:.0f}")
        assert 600 <= allowed <= ceiling * 1.02
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize(("policy", "status"), [("fail-open", 200), ("fail-closed", 503)])
def test_redis_down_follows_the_policy(fakes: dict[str, FakeServer], policy: str, status: int) -> None:
    storage = {"redis": f"redis://127.0.0.1:{free_port()}/0", "redis_policy": policy}
    server = Server(gateway_config(fakes, server={"admin_key": ADMIN_KEY}, storage=storage)).start()
    try:
        key = project_with_key(server, "outage", {"limits": {"rpm": 100}})
        started = time.monotonic()
        if status == 200:
            assert ask(server, key).parse().choices
        else:
            with pytest.raises(openai.InternalServerError) as refused:
                ask(server, key)
            assert refused.value.status_code == 503
        assert time.monotonic() - started < 2
        metrics = call_text(server, "/metrics")
        assert "foundry_limit_store_failures_total 1.0" in metrics
    finally:
        server.stop()


def call_text(server: Server, path: str) -> str:
    import urllib.request

    with urllib.request.urlopen(server.url + path, timeout=10) as answer:
        return str(answer.read().decode())


def test_a_call_the_client_abandons_gives_its_concurrency_slot_back(
    limited: Server, fakes: dict[str, FakeServer]
) -> None:
    key = project_with_key(limited, "abandon", {"limits": {"concurrency": 1}})
    record = fakes["openai"].app["record"]
    record.settled.clear()
    fakes["openai"].app["faults"].delay = 1.0
    impatient = openai.OpenAI(base_url=limited.url + "/v1", api_key=key, max_retries=0, timeout=0.2)
    try:
        with pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}])
        assert record.settled.wait(10)  # the gateway dropped the upstream call when the client left
    finally:
        fakes["openai"].app["faults"].delay = 0
    assert ask(limited, key).parse().choices  # the abandoned call's slot was given back

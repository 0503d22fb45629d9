"""Resilience through a real gateway: failing hosts, resets, dead primaries, breakers, hedging, fallbacks."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fakes import openai as fake_openai
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server, free_port

KEY = "sk-upstream"


@pytest.fixture(scope="module")
def hosts() -> Iterator[dict[str, FakeServer]]:
    servers = {name: FakeServer(fake_openai.create(KEY)).start() for name in ("a", "b")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(autouse=True)
def _calm(hosts: dict[str, FakeServer]) -> Iterator[None]:
    yield
    for server in hosts.values():
        faults = server.app["faults"]
        faults.failure_rate, faults.failure, faults.delay, faults.cut_after, faults.retry_after = (
            0,
            "500",
            0,
            None,
            None,
        )
        faults.errors.clear()


def backend(provider: str, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "upstream_model": "m", **extra}


@pytest.fixture(scope="module")
def gateway(hosts: dict[str, FakeServer]) -> Iterator[Server]:
    def provider(url: str) -> dict[str, Any]:
        return {
            "type": "openai-compatible",
            "base_url": url + "/v1",
            "api_key": KEY,
            "timeout": {"connect": 1, "read": 5},
        }

    model = "openai/gpt-4.1-mini"

    def rescued_by(fallback: str) -> dict[str, Any]:
        """A deployment whose only host is dead, so every call goes to `fallback`."""
        return {"model": model, "backends": [backend("dead")], "fallbacks": [fallback], "retry": {"attempts": 1}}

    server = Server(
        {
            "server": {"admin_key": ADMIN_KEY},
            "providers": {
                "a": provider(hosts["a"].url),
                "b": provider(hosts["b"].url),
                "dead": provider(f"http://127.0.0.1:{free_port()}"),
            },
            "deployments": {
                "pair": {"model": model, "backends": [backend("a"), backend("b")]},
                "dead-primary": {"model": model, "backends": [backend("dead"), backend("b", priority=2)]},
                "hedged": {
                    "model": model,
                    "backends": [backend("a", priority=1), backend("b", priority=2)],
                    "hedge_after": 0.1,
                },
                "all-dead": {
                    "model": model,
                    "backends": [backend("dead")],
                    "breaker": {"failures": 2, "cooldown": 60},
                    "retry": {"attempts": 2, "backoff": 0},
                },
                "rescued": rescued_by("pair"),
                "small": {
                    "model": model,
                    "backends": [backend("a")],
                    "fallbacks": ["big"],
                    "fallback_on": ["context_length_exceeded"],
                },
                "big": {"model": model, "backends": [backend("b")]},
                "capped": {"model": model, "backends": [backend("a")], "limits": {"rpm": 1}},
                "rescued-by-capped": rescued_by("capped"),
                "one-at-a-time": {"model": model, "backends": [backend("b")], "limits": {"concurrency": 1}},
                "rescued-serially": rescued_by("one-at-a-time"),
                "a-only": {
                    "model": model,
                    "backends": [backend("a")],
                    "breaker": {"failures": 3, "cooldown": 0.5},
                    "retry": {"attempts": 1},
                },
            },
        }
    ).start()
    yield server
    server.stop()


async def run_many(
    server: Server, model: str, count: int, *, stream: bool = False, concurrency: int = 16
) -> list[float]:
    """Send `count` chats; fail on any client-visible error; return each call's latency."""
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0, timeout=30)
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(number: int) -> None:
        async with gate:
            started = time.perf_counter()
            text = f"request {number}"
            messages = [{"role": "user", "content": text}]
            if stream:
                chunks = await client.chat.completions.create(model=model, messages=messages, stream=True)  # type: ignore[arg-type]
                answer = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
            else:
                completion = await client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
                answer = completion.choices[0].message.content or ""
            assert answer == f"You said: {text}"
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(n) for n in range(count)))
    await client.close()
    return latencies


def p99(latencies: list[float]) -> float:
    return sorted(latencies)[int(len(latencies) * 0.99) - 1]


@pytest.mark.parametrize(
    ("failure", "stream"), [("500", False), ("503", True), ("reset", False), ("reset", True), ("truncated", False)]
)
async def test_one_host_failing_half_its_calls_costs_clients_nothing(
    gateway: Server, hosts: dict[str, FakeServer], failure: str, stream: bool
) -> None:
    hosts["a"].app["faults"].failure_rate = 0.5
    hosts["a"].app["faults"].failure = failure
    latencies = await run_many(gateway, "pair", 1000, stream=stream)
    assert len(latencies) == 1000
    print(f"\n{failure} stream={stream}: p99 {p99(latencies) * 1000:.1f} ms")


async def test_a_dead_primary_sends_everything_to_priority_two(gateway: Server, hosts: dict[str, FakeServer]) -> None:
    before = hosts["b"].app["record"].count
    latencies = await run_many(gateway, "dead-primary", 300)
    assert hosts["b"].app["record"].count - before == 300
    print(f"\ndead primary: p99 {p99(latencies) * 1000:.1f} ms")
    assert p99(latencies) < 1.0
    status = admin(gateway, "/admin/deployments/dead-primary")["backend_status"]
    assert status[0]["provider"] == "dead" and status[0]["state"] == "open"
    assert status[1]["state"] == "closed" and status[1]["latency_ms"] > 0 and status[1]["error_rate"] == 0


async def test_retry_after_is_honoured_by_resting_the_host(gateway: Server, hosts: dict[str, FakeServer]) -> None:
    faults = hosts["a"].app["faults"]
    faults.failure_rate, faults.failure, faults.retry_after = 1.0, "429", "30"
    before = hosts["a"].app["record"].count
    await run_many(gateway, "pair", 100)
    assert hosts["a"].app["record"].count - before <= 2  # asked once or twice, then left to rest


def admin(server: Server, path: str) -> dict[str, Any]:
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def chat(server: Server, model: str, text: str = "hi", **extra: Any) -> Any:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **extra
    )


def test_breaker_opens_half_opens_and_closes_through_the_gateway(gateway: Server, hosts: dict[str, FakeServer]) -> None:
    faults = hosts["a"].app["faults"]
    faults.failure_rate = 1.0
    for _ in range(3):
        with pytest.raises(openai.APIStatusError):
            chat(gateway, "a-only")
    assert admin(gateway, "/admin/deployments/a-only")["backend_status"][0]["state"] == "open"
    calls = hosts["a"].app["record"].count
    with pytest.raises(openai.APIStatusError) as refused:
        chat(gateway, "a-only")
    assert refused.value.status_code == 503 and "circuit breaker" in refused.value.message
    assert hosts["a"].app["record"].count == calls  # not even tried
    faults.failure_rate = 0.0
    deadline = time.monotonic() + 5
    while admin(gateway, "/admin/deployments/a-only")["backend_status"][0]["state"] != "half_open":
        assert time.monotonic() < deadline
    assert chat(gateway, "a-only").parse().choices[0].message.content == "You said: hi"
    assert admin(gateway, "/admin/deployments/a-only")["backend_status"][0]["state"] == "closed"


def test_all_backends_down_is_a_quick_503_naming_the_deployment(gateway: Server) -> None:
    for _ in range(2):
        with pytest.raises(openai.APIStatusError):
            chat(gateway, "all-dead")
    started = time.perf_counter()
    with pytest.raises(openai.APIStatusError) as caught:
        chat(gateway, "all-dead")
    assert time.perf_counter() - started < 0.2
    assert caught.value.status_code == 503
    assert caught.value.code == "deployment_unavailable"
    assert "'all-dead'" in caught.value.message


def test_fallback_deployment_serves_and_says_so(gateway: Server) -> None:
    raw = chat(gateway, "rescued")
    assert raw.parse().choices[0].message.content == "You said: hi"
    assert raw.headers["x-foundry-deployment"] == "pair"
    assert raw.headers["x-foundry-backend"] in ("a", "b")


def test_a_fallback_counts_against_its_own_limits(gateway: Server) -> None:
    assert chat(gateway, "rescued-by-capped").headers["x-foundry-deployment"] == "capped"
    with pytest.raises(openai.RateLimitError) as refused:  # the fallback took capped's one request a minute
        chat(gateway, "capped")
    assert "'capped'" in refused.value.message
    with pytest.raises(openai.APIStatusError) as failed:  # capped is full: no fallback left, the primary's error
        chat(gateway, "rescued-by-capped")
    assert failed.value.status_code == 503
    assert "'rescued-by-capped'" in failed.value.message
    for _ in range(3):  # each call's slot on the fallback is given back when it ends
        assert chat(gateway, "rescued-serially").headers["x-foundry-deployment"] == "one-at-a-time"
    for stream in (False, True):
        assert chat(gateway, "one-at-a-time", stream=stream).status_code == 200


def test_context_length_fallback(gateway: Server, hosts: dict[str, FakeServer]) -> None:
    too_long = {
        "error": {
            "message": "This model's maximum context length is 8 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    hosts["a"].app["faults"].errors.append((400, json.dumps(too_long).encode()))
    raw = chat(gateway, "small")
    assert raw.headers["x-foundry-deployment"] == "big"
    hosts["a"].app["faults"].errors.append(
        (400, b'{"error": {"message": "bad temperature", "type": "invalid_request_error"}}')
    )
    with pytest.raises(openai.BadRequestError):  # other 4xx: neither retried nor sent to a fallback
        chat(gateway, "small")


@pytest.mark.parametrize("stream", [False, True])
def test_hedging_takes_the_first_answer_and_cancels_the_other(
    gateway: Server, hosts: dict[str, FakeServer], stream: bool
) -> None:
    record = hosts["a"].app["record"]
    record.settled.clear()
    abandoned = record.abandoned
    hosts["a"].app["faults"].delay = 1.0
    started = time.perf_counter()
    raw = chat(gateway, "hedged", stream=stream)
    assert raw.headers["x-foundry-backend"] == "b"
    assert time.perf_counter() - started < 0.8
    assert record.settled.wait(5)
    assert record.abandoned == abandoned + 1


def test_a_stream_cut_after_the_first_byte_ends_with_an_error_event(
    gateway: Server, hosts: dict[str, FakeServer]
) -> None:
    for host in hosts.values():
        host.app["faults"].cut_after = 3
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(
            model="pair", messages=[{"role": "user", "content": "one two three four"}], stream=True
        ):
            received.append(chunk)
    assert len(received) == 3
    assert "before [DONE]" in caught.value.message or "broke off" in caught.value.message

"""The fault suite, longer: requests, failures seen by clients and latency per scenario.

Each scenario runs a real gateway process against fake upstreams on 127.0.0.1 (tests/fakes, with
their fault switches) and sends a bounded number of requests at a fixed concurrency. It prints a
Markdown table and writes bench/results/faults-<timestamp>.json.

Usage: .venv/bin/python bench/faults.py [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes import openai as fake_openai  # noqa: E402
from tests.fakes.server import FakeServer  # noqa: E402
from tests.harness import ADMIN_KEY, Server, free_port  # noqa: E402

KEY = "sk-upstream"
MODEL = "openai/gpt-4.1-mini"


@dataclass
class Scenario:
    name: str
    deployment: str
    faults: dict[str, Any]
    stream: bool = False


SCENARIOS = [
    Scenario("healthy pair (baseline)", "pair", {}),
    Scenario("one host fails 50% with 500", "pair", {"failure_rate": 0.5, "failure": "500"}),
    Scenario("one host fails 50% with 503, streaming", "pair", {"failure_rate": 0.5, "failure": "503"}, True),
    Scenario("one host resets 50% of connections", "pair", {"failure_rate": 0.5, "failure": "reset"}),
    Scenario("one host resets 50%, streaming", "pair", {"failure_rate": 0.5, "failure": "reset"}, True),
    Scenario("one host truncates 50% of bodies", "pair", {"failure_rate": 0.5, "failure": "truncated"}),
    Scenario("one host sends malformed JSON 50%", "pair", {"failure_rate": 0.5, "failure": "malformed"}),
    Scenario(
        "one host answers 429 + Retry-After", "pair", {"failure_rate": 1.0, "failure": "429", "retry_after": "30"}
    ),
    Scenario("dead primary, priority 2 serves", "dead-primary", {}),
    Scenario("primary 300 ms slow, hedged after 50 ms", "hedged", {"delay": 0.3}),
    Scenario("slow-drip stream (5 ms per event)", "pair", {"drip": 0.005}, True),
]


def config(hosts: dict[str, FakeServer]) -> dict[str, Any]:
    def provider(url: str) -> dict[str, Any]:
        return {
            "type": "openai-compatible",
            "base_url": url + "/v1",
            "api_key": KEY,
            "timeout": {"connect": 1, "read": 5},
        }

    def backend(name: str, **extra: Any) -> dict[str, Any]:
        return {"provider": name, "upstream_model": "m", **extra}

    return {
        "server": {"admin_key": ADMIN_KEY},
        "providers": {
            "a": provider(hosts["a"].url),
            "b": provider(hosts["b"].url),
            "dead": provider(f"http://127.0.0.1:{free_port()}"),
        },
        "deployments": {
            "pair": {"model": MODEL, "backends": [backend("a"), backend("b")]},
            "dead-primary": {"model": MODEL, "backends": [backend("dead"), backend("b", priority=2)]},
            "hedged": {"model": MODEL, "backends": [backend("a"), backend("b", priority=2)], "hedge_after": 0.05},
        },
    }


async def drive(url: str, scenario: Scenario, count: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(number: int) -> None:
            nonlocal failures
            text = f"request {number}"
            body = {
                "model": scenario.deployment,
                "messages": [{"role": "user", "content": text}],
                "stream": scenario.stream,
            }
            async with gate:
                started = time.perf_counter()
                try:
                    async with session.post(url + "/v1/chat/completions", json=body) as response:
                        data = await response.read()
                    ok = response.status == 200 and _complete(data, scenario.stream, f"You said: {text}")
                except aiohttp.ClientError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                failures += not ok

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "scenario": scenario.name,
        "requests": count,
        "client_failures": failures,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "requests_per_s": count / elapsed,
    }


def _complete(data: bytes, stream: bool, expected: str) -> bool:
    if not stream:
        return bool(json.loads(data)["choices"][0]["message"]["content"] == expected)
    text = ""
    for line in data.split(b"\n"):
        if line.startswith(b"data: {"):
            chunk = json.loads(line[6:])
            if "error" in chunk:
                return False
            text += "".join(c["delta"].get("content") or "" for c in chunk.get("choices", []))
    return text == expected and data.rstrip().endswith(b"data: [DONE]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the fakes' deliberate resets
    hosts = {name: FakeServer(fake_openai.create(KEY)).start() for name in ("a", "b")}
    rows = []
    try:
        for scenario in SCENARIOS:
            gateway = Server(config(hosts)).start()  # a fresh process: breakers and rests start closed
            faults = hosts["a"].app["faults"]
            for name, value in scenario.faults.items():
                setattr(faults, name, value)
            try:
                rows.append(asyncio.run(drive(gateway.url, scenario, args.requests, args.concurrency)))
            finally:
                gateway.stop()
                for name, value in {"failure_rate": 0.0, "delay": 0.0, "drip": 0.0, "retry_after": None}.items():
                    setattr(faults, name, value)
    finally:
        for host in hosts.values():
            host.stop()
    print(render(rows))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    out = results / f"faults-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"requests": args.requests, "concurrency": args.concurrency, "rows": rows}, indent=2))
    print(f"written: {out.relative_to(ROOT)}")


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | requests | failures seen by clients | p50 | p99 | requests/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['scenario']} | {row['requests']} | {row['client_failures']} | {row['p50_ms']:.1f} ms "
            f"| {row['p99_ms']:.1f} ms | {row['requests_per_s']:,.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

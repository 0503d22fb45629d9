"""The embedded engine benchmark: gemma-3-270m through the gateway vs. llama-cpp-python called directly.

It measures, on this machine, streaming a completion of --tokens tokens at temperature 0:
- time to first token and decode tokens/s of llama-cpp-python in this process (the model file the
  gateway uses, the same thread count), and of the same call through `foundry serve` with the
  `openai` SDK (a `llamacpp` provider, one replica), in interleaved rounds so drift hits both alike;
- with 4 concurrent clients: the aggregate tokens/s and the median time to first token on 1 replica
  and on 2 replicas (worker processes).

It prints a Markdown table and writes bench/results/engine-<timestamp>.json.

Usage: .venv/bin/python bench/engine.py [--rounds N] [--tokens N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import openai
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
MODELS = ROOT / ".cache" / "models"
PROMPT = "The history of the Roman Empire began"
THREADS = 1  # the engine's default on this 2-core machine: one thread per two cores


def direct_round(llm: Any, tokens: int) -> tuple[float, float]:
    started = time.perf_counter()
    first, count = 0.0, 0
    for _ in llm.create_completion(PROMPT, max_tokens=tokens, temperature=0, stream=True):
        count += 1
        first = first or time.perf_counter()
    return first - started, (count - 1) / (time.perf_counter() - first)


def stream_once(client: openai.OpenAI, tokens: int) -> tuple[float, int, float]:
    """(time to first token, tokens, seconds from first token to the end) of one streamed call."""
    started = time.perf_counter()
    first, count = 0.0, 0
    for event in client.completions.create(model="gemma", prompt=PROMPT, max_tokens=tokens, temperature=0, stream=True):
        if event.choices and event.choices[0].text:
            count += 1
            first = first or time.perf_counter()
    return first - started, count, time.perf_counter() - first


class Gateway:
    def __init__(self, model: Path, replicas: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="foundry-bench-engine-"))
        with socket_port() as port:
            self.port = port
        engine = {"model_path": str(model), "n_threads": THREADS, "replicas": replicas, "max_queue": 16}
        config = {
            "server": {"port": self.port},
            "storage": {"database": f"sqlite:///{self.dir}/foundry.db", "spool_dir": str(self.dir / "spool")},
            "providers": {"local": {"type": "llamacpp", "engine": engine}},
            "deployments": {"gemma": {"model": "google/gemma-3-270m", "backends": [{"provider": "local"}]}},
        }
        (self.dir / "config.yaml").write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
        command = [sys.executable, "-m", "openfoundry", "serve", "--config", str(self.dir / "config.yaml")]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key="x", max_retries=0)
        self._wait(replicas)

    def _wait(self, replicas: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/admin/engines", timeout=1) as answer:
                    if json.loads(answer.read())["data"][0]["replicas_ready"] == replicas:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the gateway's engine did not get ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class socket_port:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *_: object) -> None:
        self.sock.close()


def concurrent(gateway: Gateway, clients: int, tokens: int) -> dict[str, float]:
    results: list[tuple[float, int, float]] = []
    started = time.perf_counter()
    threads = [
        threading.Thread(target=lambda: results.append(stream_once(gateway.client, tokens))) for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "aggregate_tokens_per_s": sum(r[1] for r in results) / wall,
        "ttft_ms_p50": statistics.median(r[0] for r in results) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from llama_cpp import Llama

    from openfoundry.engines.models import bundled_model

    model = bundled_model(MODELS)
    llm = Llama(str(model), n_ctx=4096, n_threads=THREADS, verbose=False)
    direct_round(llm, 8)  # warm-up
    rows: dict[str, Any] = {"direct": [], "gateway": []}
    gateway = Gateway(model, replicas=1)
    try:
        stream_once(gateway.client, 8)
        for _ in range(args.rounds):
            rows["direct"].append(direct_round(llm, args.tokens))
            ttft, count, seconds = stream_once(gateway.client, args.tokens)
            rows["gateway"].append((ttft, (count - 1) / seconds))
        one = statistics.median(concurrent(gateway, 4, args.tokens)["aggregate_tokens_per_s"] for _ in range(2))
        single = concurrent(gateway, 4, args.tokens)
    finally:
        gateway.stop()
    del llm
    pair = Gateway(model, replicas=2)
    try:
        concurrent(pair, 2, 8)
        double = [concurrent(pair, 4, args.tokens) for _ in range(3)]
    finally:
        pair.stop()
    report = {
        "tokens": args.tokens,
        "rounds": args.rounds,
        "direct_ttft_ms": statistics.median(r[0] for r in rows["direct"]) * 1000,
        "direct_tokens_per_s": statistics.median(r[1] for r in rows["direct"]),
        "gateway_ttft_ms": statistics.median(r[0] for r in rows["gateway"]) * 1000,
        "gateway_tokens_per_s": statistics.median(r[1] for r in rows["gateway"]),
        "four_clients_one_replica_tokens_per_s": one,
        "four_clients_one_replica_ttft_ms_p50": single["ttft_ms_p50"],
        "four_clients_two_replicas_tokens_per_s": statistics.median(d["aggregate_tokens_per_s"] for d in double),
        "four_clients_two_replicas_ttft_ms_p50": statistics.median(d["ttft_ms_p50"] for d in double),
        "rounds_raw": rows,
        "cpus": os.cpu_count(),
    }
    ratio = report["gateway_tokens_per_s"] / report["direct_tokens_per_s"]
    print(f"| gemma-3-270m, {args.tokens} tokens, {THREADS} thread | tokens/s | time to first token |")
    print("| --- | --- | --- |")
    print(f"| llama-cpp-python directly | {report['direct_tokens_per_s']:.1f} | {report['direct_ttft_ms']:.1f} ms |")
    print(
        f"| through the gateway (streamed, SDK) | {report['gateway_tokens_per_s']:.1f} ({ratio:.0%}) "
        f"| {report['gateway_ttft_ms']:.1f} ms |"
    )
    print(
        f"| 4 clients, 1 replica (aggregate) | {report['four_clients_one_replica_tokens_per_s']:.1f} "
        f"| {report['four_clients_one_replica_ttft_ms_p50']:.0f} ms (p50, queued) |"
    )
    print(
        f"| 4 clients, 2 replicas (aggregate) | {report['four_clients_two_replicas_tokens_per_s']:.1f} "
        f"| {report['four_clients_two_replicas_ttft_ms_p50']:.0f} ms (p50) |"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"engine-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

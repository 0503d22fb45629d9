"""Supervised GPU servers (`vllm`, `sglang`): started, probed, restarted and stopped by the gateway.

There is no GPU here: the child is tests/fakes/engine_server.py, a stand-in that takes vLLM's and
SGLang's command lines and speaks the OpenAI protocol."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from openfoundry.config import ConfigError, LaunchSettings, load_settings
from openfoundry.engines.supervised import command_line
from tests.engines.conftest import engines
from tests.harness import ADMIN_KEY, Server

STANDIN = [sys.executable, str(Path(__file__).resolve().parents[1] / "fakes" / "engine_server.py")]
KEY = "sk-standin"


def test_command_lines_follow_each_servers_recipe() -> None:
    launch = LaunchSettings(model="/models/grok-2", tensor_parallel_size=8, extra_args=["--max-model-len", "8192"])
    assert command_line("vllm", launch, 9000) == [
        "vllm", "serve", "/models/grok-2", "--host", "127.0.0.1", "--port", "9000",
        "--served-model-name", "/models/grok-2", "--tensor-parallel-size", "8", "--max-model-len", "8192",
    ]  # fmt: skip
    sglang = command_line("sglang", launch.model_copy(update={"served_model_name": "grok-2"}), 9001)
    assert sglang[1:3] == ["-m", "sglang.launch_server"]
    assert sglang[3:] == [
        "--model-path", "/models/grok-2", "--host", "127.0.0.1", "--port", "9001",
        "--served-model-name", "grok-2", "--tp-size", "8", "--max-model-len", "8192",
    ]  # fmt: skip


def test_launch_is_required_for_supervised_types_and_only_there(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("providers: {gpu: {type: vllm}}\n")
    with pytest.raises(ConfigError, match="launch: required"):
        load_settings(config, {})
    config.write_text("providers: {x: {type: xai, launch: {model: m}}}\n")
    with pytest.raises(ConfigError, match="launch: only for"):
        load_settings(config, {})


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    record = tmp_path_factory.mktemp("standin") / "starts.jsonl"
    launch = {
        "model": "/models/gpt-oss-20b",
        "served_model_name": "gpt-oss-20b",
        "tensor_parallel_size": 2,
        "extra_args": ["--max-model-len", "4096"],
        "command": STANDIN,
        "env": {"STANDIN_RECORD": str(record), "STANDIN_KEY": KEY, "STANDIN_DELAY": "0.5"},
        "stop_timeout": 5,
    }
    config = {
        "server": {"admin_key": ADMIN_KEY},
        "providers": {"gpu": {"type": "vllm", "api_key": KEY, "launch": launch}},
        "deployments": {"oss": {"model": "openai/gpt-oss-20b", "backends": [{"provider": "gpu"}]}},
    }
    server = Server(config).start()
    yield server, record
    server.stop()


def _gpu(server: Server, until: Any = None, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = next(e for e in engines(server) if e["provider"] == "gpu")
        if until is None or until(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_the_child_is_started_with_the_recipe_and_routed_to(supervised: tuple[Server, Path]) -> None:
    server, record = supervised
    status = _gpu(server, lambda s: s["state"] == "ready")
    assert status["state"] == "ready" and status["type"] == "vllm"
    started = json.loads(record.read_text().splitlines()[0])
    assert started["argv"][:1] == ["/models/gpt-oss-20b"]
    assert "--tensor-parallel-size" in started["argv"] and started["argv"][-2:] == ["--max-model-len", "4096"]
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    answer = client.chat.completions.create(model="oss", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "You said: hi"
    assert answer.model == "gpt-oss-20b"  # renamed to the name the server serves


def test_a_crashed_child_is_restarted(supervised: tuple[Server, Path]) -> None:
    server, record = supervised
    first = _gpu(server, lambda s: s["state"] == "ready")["replicas"][0]
    os.kill(first["pid"], signal.SIGKILL)
    status = _gpu(server, lambda s: s["state"] == "ready" and s["replicas"][0]["restarts"] >= 1)
    assert status["replicas"][0]["restarts"] == 1 and status["replicas"][0]["pid"] != first["pid"]
    assert len(record.read_text().splitlines()) == 2
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    assert client.chat.completions.create(model="oss", messages=[{"role": "user", "content": "again"}]).choices


def test_the_child_is_stopped_on_shutdown(supervised: tuple[Server, Path]) -> None:
    server, record = supervised
    _gpu(server, lambda s: s["state"] == "ready")
    pids = [json.loads(line)["pid"] for line in record.read_text().splitlines()]
    server.stop()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pids[-1]):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"

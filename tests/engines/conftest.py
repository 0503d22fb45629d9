"""The bundled Gemma model, assembled once per session into the repository's ignored .cache/, and a
gateway process serving it through `llamacpp` providers."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from openfoundry.engines.models import bundled_model
from tests.harness import ADMIN_KEY, Server, free_port

MODELS_DIR = Path(__file__).resolve().parents[2] / ".cache" / "models"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    bundled_model(MODELS_DIR, progress=False)
    return MODELS_DIR


def engines(server: Server) -> list[dict[str, Any]]:
    request = urllib.request.Request(server.url + "/admin/engines", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        data: list[dict[str, Any]] = orjson.loads(answer.read())["data"]
    return data


def wait_ready(server: Server, timeout: float = 60) -> list[dict[str, Any]]:
    """Every engine's every replica ready (the model loads in the background after start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = engines(server)
        if all(e["replicas_ready"] == e["replicas_wanted"] for e in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"engines not ready in {timeout} s: {engines(server)}")


@pytest.fixture(scope="session")
def engine_server(models_dir: Path) -> Iterator[Server]:
    """`local`: a roomy engine; `tiny`: one slot and one queue place; `pair`: two replicas."""
    engine = {"models_dir": str(models_dir), "n_ctx": 512}
    config = {
        "server": {"admin_key": ADMIN_KEY, "grpc_port": free_port()},
        "providers": {
            "local": {"type": "llamacpp", "engine": engine},
            "tiny": {"type": "llamacpp", "engine": {**engine, "max_queue": 1, "queue_timeout": 5}},
            "pair": {"type": "llamacpp", "engine": {**engine, "n_ctx": 256, "replicas": 2}},
        },
        "deployments": {
            "gemma": {"model": "google/gemma-3-270m", "backends": [{"provider": "local"}]},
            "gemma-tiny": {
                "model": "google/gemma-3-270m",
                "backends": [{"provider": "tiny"}],
                "retry": {"attempts": 1},
            },
            "gemma-pair": {"model": "google/gemma-3-270m", "backends": [{"provider": "pair"}]},
        },
    }
    server = Server(config).start()
    wait_ready(server)
    yield server
    server.stop()

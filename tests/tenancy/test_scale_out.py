"""Several gateway processes on one database: changes reach every process within 2 s."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import openai
import pytest

from tests.api.test_admin import call
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server


@pytest.fixture
def workers(fakes: dict[str, FakeServer], database: str) -> Iterator[Server]:
    config = gateway_config(fakes, server={"admin_key": ADMIN_KEY}, storage={"database": database})
    server = Server(config, args=("--workers", "3")).start()
    yield server
    server.stop()


def within_two_seconds(check: Callable[[], bool]) -> float:
    """Seconds until `check()` holds for 30 calls in a row (the kernel spreads them over the workers,
    unevenly), which must happen within 2 s."""
    started = time.monotonic()
    while not all(check() for _ in range(30)):
        assert time.monotonic() - started < 2.0
    return time.monotonic() - started


def test_revocation_and_new_deployments_reach_every_worker(workers: Server) -> None:
    call(workers, "POST", "/admin/projects", {"name": "fleet"})
    status, key = call(workers, "POST", "/admin/keys", {"project": "fleet", "name": "k"})
    assert status == 201
    secret = str(key["key"])
    within_two_seconds(lambda: call(workers, "GET", "/v1/models", key=secret)[0] == 200)

    spec = {"name": "late", "model": "openai/gpt-4.1-mini", "backends": [{"provider": "openai"}]}
    assert call(workers, "POST", "/admin/deployments", spec)[0] == 201
    client = openai.OpenAI(base_url=workers.url + "/v1", api_key=secret, max_retries=0)

    def served() -> bool:
        try:
            return client.chat.completions.create(model="late", messages=[{"role": "user", "content": "x"}]) is not None
        except (openai.NotFoundError, openai.AuthenticationError):  # a worker that has not reloaded yet
            return False

    print(f"\nnew deployment everywhere after {within_two_seconds(served):.2f} s")

    assert call(workers, "DELETE", f"/admin/keys/{key['id']}")[0] == 200
    refused = within_two_seconds(lambda: call(workers, "GET", "/v1/models", key=secret)[0] == 401)
    print(f"revocation everywhere after {refused:.2f} s")

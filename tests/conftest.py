"""Shared fixtures: fake upstreams on loopback and gateway processes configured against them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes import anthropic, azure, gemini, openai
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server, free_port

UPSTREAM_KEYS = {
    "openai": "sk-openai-upstream",
    "xai": "xai-upstream",
    "azure": "azure-upstream",
    "anthropic": "sk-ant-upstream",
    "gemini": "gemini-upstream",
}


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, FakeServer]]:
    servers = {
        "openai": FakeServer(openai.create(UPSTREAM_KEYS["openai"])).start(),
        "xai": FakeServer(openai.create(UPSTREAM_KEYS["xai"], flavour="xai")).start(),
        "azure": FakeServer(azure.create(UPSTREAM_KEYS["azure"])).start(),
        "anthropic": FakeServer(anthropic.create(UPSTREAM_KEYS["anthropic"])).start(),
        "gemini": FakeServer(gemini.create(UPSTREAM_KEYS["gemini"])).start(),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(autouse=True)
def _calm_fakes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with well-behaved fakes, whatever the last one switched on."""
    yield
    if "fakes" in request.fixturenames:
        for server in request.getfixturevalue("fakes").values():
            server.app["faults"].delay = 0.0
            server.app["faults"].errors.clear()
            server.app["faults"].retry_after = None


def gateway_config(fakes: dict[str, FakeServer], **extra: Any) -> dict[str, Any]:
    return {
        "providers": {
            "openai": {"type": "openai", "base_url": fakes["openai"].url + "/v1", "api_key": UPSTREAM_KEYS["openai"]},
            "xai": {"type": "xai", "base_url": fakes["xai"].url + "/v1", "api_key": UPSTREAM_KEYS["xai"]},
            "foundry": {
                "type": "azure-ai",
                "base_url": fakes["azure"].url + "/models",
                "api_key": UPSTREAM_KEYS["azure"],
            },
            "aoai": {"type": "azure-openai", "base_url": fakes["azure"].url, "api_key": UPSTREAM_KEYS["azure"]},
            "anthropic": {
                "type": "anthropic",
                "base_url": fakes["anthropic"].url + "/v1",
                "api_key": UPSTREAM_KEYS["anthropic"],
            },
            "gemini": {
                "type": "gemini",
                "base_url": fakes["gemini"].url + "/v1beta",
                "api_key": UPSTREAM_KEYS["gemini"],
            },
            "slow": {
                "type": "openai",
                "base_url": fakes["openai"].url + "/v1",
                "api_key": UPSTREAM_KEYS["openai"],
                "timeout": {"connect": 2, "read": 0.5},
            },
        },
        "deployments": {
            "gpt": {"model": "openai/gpt-4.1-mini", "backends": [{"provider": "openai"}]},
            "grok": {"model": "xai/grok-4", "backends": [{"provider": "xai"}]},
            "grok-mini": {"model": "xai/grok-3-mini", "backends": [{"provider": "xai"}]},
            "azure-grok": {"model": "xai/grok-3", "backends": [{"provider": "foundry"}]},
            "azure-gpt": {
                "model": "openai/gpt-4.1-mini",
                "backends": [{"provider": "aoai", "upstream_model": "my-gpt"}],
            },
            "embed": {"model": "openai/text-embedding-3-small", "backends": [{"provider": "openai"}]},
            "claude": {"model": "anthropic/claude-sonnet-4-5", "backends": [{"provider": "anthropic"}]},
            "gemini-flash": {"model": "google/gemini-2.5-flash", "backends": [{"provider": "gemini"}]},
            "gemini-embed": {"model": "google/gemini-embedding-001", "backends": [{"provider": "gemini"}]},
            "slow-gpt": {"model": "openai/gpt-4.1-mini", "backends": [{"provider": "slow"}], "retry": {"attempts": 1}},
            "gpt-once": {
                "model": "openai/gpt-4.1-mini",
                "backends": [{"provider": "openai"}],
                "retry": {"attempts": 1},
            },
        },
        **extra,
    }


@pytest.fixture(scope="session")
def server(fakes: dict[str, FakeServer]) -> Iterator[Server]:
    """A gateway with an admin key, on SQLite, serving xAI's gRPC API too."""
    gateway = Server(gateway_config(fakes, server={"admin_key": ADMIN_KEY, "grpc_port": free_port()})).start()
    yield gateway
    gateway.stop()


def _reset_postgres(url: str) -> None:
    import asyncpg

    async def drop() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(
                "DROP TABLE IF EXISTS usage, api_keys, projects, deployments, alembic_version, "
                "response_items, responses, conversation_items, conversations, "
                "vector_store_chunks, vector_store_file_batches, vector_store_files, vector_stores, files, "
                "connectors CASCADE"
            )
        finally:
            await connection.close()

    asyncio.run(drop())


DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("FOUNDRY_TEST_POSTGRES") else [])


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh database URL: SQLite always, PostgreSQL when FOUNDRY_TEST_POSTGRES is set."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/foundry.db"
    url = os.environ["FOUNDRY_TEST_POSTGRES"]
    _reset_postgres(url)
    return url

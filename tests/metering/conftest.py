"""Metering fixtures: a migrated usage store on each test database, and usage records to put in it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from openfoundry.metering.record import UsageRecord
from openfoundry.store.db import Database
from openfoundry.store.usage import UsageStore


def usage(project: str | None = "alpha", **fields: Any) -> UsageRecord:
    """A usage record with plausible values; `fields` override them."""
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "ts": time.time(),
        "project": project,
        "key_id": "key1",
        "deployment": "gpt",
        "backend": "openai",
        "kind": "chat",
        "status": 200,
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "cost_usd": 0.001,
        "latency_ms": 12.5,
    }
    return UsageRecord(**(values | fields))


@pytest.fixture
async def store(database: str) -> AsyncIterator[UsageStore]:
    db = Database(database)
    await db.migrate()
    yield UsageStore(db)
    await db.close()

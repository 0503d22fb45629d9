"""What the Responses and Conversations tests share: SDK clients bound to a new project each, and the
function tool the fake model calls."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import openai

from tests.api.test_admin import call
from tests.harness import Server

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


def project_key(server: Server) -> str:
    """The API key of a new project with a unique name."""
    name = f"agents-{secrets.token_hex(4)}"
    status, body = call(server, "POST", "/admin/projects", {"name": name})
    assert status == 201, body
    status, key = call(server, "POST", "/admin/keys", {"project": name, "name": "responses-test"})
    assert status == 201, key
    return str(key["key"])


def project_client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=project_key(server), max_retries=0)


def wait_for(condition: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")

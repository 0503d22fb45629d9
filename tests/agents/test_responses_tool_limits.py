"""The runner's limits around server tools, against a real MCP server: the time a call may take, the
size of what the model is told, and how earlier server calls are replayed to the model."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.agents.responses_support import project_client, project_key
from tests.conftest import gateway_config
from tests.fakes.mcp_server import FakeMcpServer
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server

OUTPUT_LIMIT = 1024


@pytest.fixture(scope="module")
def mcp() -> Iterator[FakeMcpServer]:
    server = FakeMcpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(fakes: dict[str, FakeServer], mcp: FakeMcpServer) -> Iterator[Server]:
    agents = {"tool_hosts_allowlist": [mcp.host], "tool_timeout": 1.0, "max_tool_output_bytes": OUTPUT_LIMIT}
    server = Server(gateway_config(fakes, server={"admin_key": ADMIN_KEY}, agents=agents)).start()
    yield server
    server.stop()


def lab(mcp: FakeMcpServer, tool: str) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "lab",
        "server_url": mcp.url,
        "allowed_tools": [tool],
        "require_approval": "never",
    }


def sent_messages(fakes: dict[str, FakeServer]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads(fakes["openai"].app["record"].body)["messages"]
    return messages


def test_a_tool_call_past_the_time_limit_is_an_error_item(gateway: Server, mcp: FakeMcpServer) -> None:
    client = project_client(gateway)
    started = time.monotonic()
    response = client.responses.create(model="gpt", input="wait for five whole seconds", tools=[lab(mcp, "slow")])  # type: ignore[list-item]
    assert time.monotonic() - started < 4, "the 5 s tool call was not cut at the 1 s limit"
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
    call = response.output[1]
    assert call.error and call.output is None  # type: ignore[union-attr]
    assert response.output_text.startswith("The lab__slow tool returned: error")


def test_the_model_is_told_at_most_the_output_limit(
    gateway: Server, mcp: FakeMcpServer, fakes: dict[str, FakeServer]
) -> None:
    client = project_client(gateway)
    response = client.responses.create(model="gpt", input="tell me about cats", tools=[lab(mcp, "huge_text")])  # type: ignore[list-item]
    assert response.status == "completed"
    told = sent_messages(fakes)[-1]
    assert told["role"] == "tool" and 0 < len(told["content"].encode()) <= OUTPUT_LIMIT
    assert told["content"].startswith("cats cats")


def test_earlier_server_calls_are_replayed_and_traces_stay_private(
    gateway: Server, mcp: FakeMcpServer, fakes: dict[str, FakeServer]
) -> None:
    key = project_key(gateway)
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    first = client.responses.create(model="gpt", input="find order Z-9", tools=[lab(mcp, "lookup_order")])  # type: ignore[list-item]
    assert "Order Z-9" in first.output_text
    second = client.responses.create(model="gpt", previous_response_id=first.id, input="thanks")
    assert second.output_text == "You said: thanks"
    replayed = sent_messages(fakes)
    assert [m["role"] for m in replayed] == ["user", "assistant", "tool", "assistant", "user"]
    assert replayed[1]["tool_calls"][0]["function"]["name"] == "lab__lookup_order"
    assert replayed[2]["content"] == "Order Z-9: 3 widgets, shipped"
    assert replayed[2]["tool_call_id"] == replayed[1]["tool_calls"][0]["id"]
    assert replayed[3]["content"] == first.output_text

    request = urllib.request.Request(
        f"{gateway.url}/v1/responses/{first.id}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        raw = answer.read().decode()
    assert "_trace" not in raw and "Order Z-9" in raw


@pytest.mark.parametrize(("budget", "choice_after"), [(1, "none"), (None, "auto")])
def test_a_spent_tool_budget_asks_the_model_to_answer(
    gateway: Server, mcp: FakeMcpServer, fakes: dict[str, FakeServer], budget: int | None, choice_after: str
) -> None:
    client = project_client(gateway)
    options = {} if budget is None else {"max_tool_calls": budget}
    response = client.responses.create(
        model="gpt",
        input="find order Q-1",
        tools=[lab(mcp, "lookup_order")],  # type: ignore[list-item]
        **options,  # type: ignore[arg-type]
    )
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert response.max_tool_calls == budget
    assert json.loads(fakes["openai"].app["record"].body)["tool_choice"] == choice_after

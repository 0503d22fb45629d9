"""MCP and OpenAPI tools through the gateway: the official `openai` SDK against `/v1/responses`, a real
MCP server and a real REST service, reachable only because the config lists their ports."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from agents import Agent, HostedMCPTool, Runner, set_tracing_disabled
from agents.mcp import MCPServerStreamableHttp, create_static_tool_filter
from agents.models.openai_responses import OpenAIResponsesModel

from tests.agents.responses_support import project_client, project_key
from tests.api.test_admin import call
from tests.conftest import gateway_config
from tests.fakes import rest_service
from tests.fakes.mcp_server import FakeMcpServer
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server, free_port


@pytest.fixture(scope="module")
def mcp() -> Iterator[FakeMcpServer]:
    server = FakeMcpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rest() -> Iterator[FakeServer]:
    server = FakeServer(rest_service.create()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(fakes: dict[str, FakeServer], mcp: FakeMcpServer, rest: FakeServer) -> Iterator[Server]:
    allowlist = [mcp.host, f"127.0.0.1:{rest.port}"]
    config = gateway_config(fakes, server={"admin_key": ADMIN_KEY}, agents={"tool_hosts_allowlist": allowlist})
    server = Server(config).start()
    yield server
    server.stop()


def shop(mcp: FakeMcpServer, **fields: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "shop", "server_url": mcp.url, "allowed_tools": ["lookup_order"], **fields}


def types(response: Any) -> list[str]:
    return [item.type for item in response.output]


@pytest.mark.parametrize("model", ["gpt", "claude", "grok"])
def test_an_mcp_tool_runs_on_the_server(gateway: Server, mcp: FakeMcpServer, model: str) -> None:
    client = project_client(gateway)
    response = client.responses.create(
        model=model, input="Where is order A-17", tools=[shop(mcp, require_approval="never")]
    )
    assert response.status == "completed"
    assert types(response) == ["mcp_list_tools", "mcp_call", "message"]
    listed, called, _ = response.output
    assert [tool.name for tool in listed.tools] == ["lookup_order"]
    assert (called.server_label, called.name, json.loads(called.arguments)) == (
        "shop",
        "lookup_order",
        {"order_id": "A-17"},
    )
    assert called.output == "Order A-17: 3 widgets, shipped" and called.error is None
    assert "Order A-17: 3 widgets, shipped" in response.output_text
    assert client.responses.retrieve(response.id).output[1].output == called.output


def test_approval_is_asked_first_and_the_call_runs_once_approved(gateway: Server, mcp: FakeMcpServer) -> None:
    client = project_client(gateway)
    tools = [shop(mcp)]
    calls_before = len(mcp.calls)
    asked = client.responses.create(model="gpt", input="Where is order B-2", tools=tools)
    assert types(asked) == ["mcp_list_tools", "mcp_approval_request"]
    request = asked.output[1]
    assert (request.server_label, request.name, json.loads(request.arguments)) == (
        "shop",
        "lookup_order",
        {"order_id": "B-2"},
    )
    assert len(mcp.calls) == calls_before, "nothing runs before the approval"

    approval = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    done = client.responses.create(model="gpt", previous_response_id=asked.id, input=[approval], tools=tools)
    called = next(item for item in done.output if item.type == "mcp_call")
    assert called.output == "Order B-2: 3 widgets, shipped"
    assert called.approval_request_id == request.id
    assert "Order B-2" in done.output_text
    assert mcp.calls[-1] == ("lookup_order", {"order_id": "B-2"})


def test_a_refused_approval_runs_nothing(gateway: Server, mcp: FakeMcpServer) -> None:
    client = project_client(gateway)
    tools = [shop(mcp, require_approval={"always": {"tool_names": ["lookup_order"]}})]
    asked = client.responses.create(model="gpt", input="Where is order C-3", tools=tools)
    calls_before = len(mcp.calls)
    refusal = {"type": "mcp_approval_response", "approval_request_id": asked.output[1].id, "approve": False}
    done = client.responses.create(model="gpt", previous_response_id=asked.id, input=[refusal], tools=tools)
    assert done.status == "completed"
    assert len(mcp.calls) == calls_before
    assert all(item.type != "mcp_call" or item.output is None for item in done.output)


def test_the_mcp_stream_carries_the_tool_events(gateway: Server, mcp: FakeMcpServer) -> None:
    client = project_client(gateway)
    with client.responses.stream(
        model="gpt", input="Where is order D-4", tools=[shop(mcp, require_approval="never")]
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_response()
    for kind in ("response.mcp_list_tools.completed", "response.mcp_call.in_progress", "response.mcp_call.completed"):
        assert kind in events
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert types(final) == ["mcp_list_tools", "mcp_call", "message"]


def test_headers_are_used_but_never_shown(gateway: Server, mcp: FakeMcpServer) -> None:
    client = project_client(gateway)
    tool = shop(mcp, server_url=mcp.private_url, headers={"x-mcp-token": mcp.token}, require_approval="never")
    response = client.responses.create(model="gpt", input="Where is order E-5", tools=[tool])
    assert response.output[1].output == "Order E-5: 3 widgets, shipped"
    assert mcp.token not in response.model_dump_json()
    assert mcp.token not in client.responses.retrieve(response.id).model_dump_json()
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt", input="x", tools=[{**tool, "headers": {"x-mcp-token": "wrong-secret"}}])
    assert "HTTP 401" in caught.value.message and "wrong-secret" not in caught.value.message
    assert mcp.token not in gateway.log.read_text()


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:{free}/mcp", "http://localhost:{mcp}/mcp", "http://169.254.169.254/mcp", "http://10.0.0.1/mcp"],
)
def test_mcp_servers_outside_the_allowlist_are_a_400(gateway: Server, mcp: FakeMcpServer, url: str) -> None:
    client = project_client(gateway)
    server_url = url.format(free=free_port(), mcp=mcp.port)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt", input="hi", tools=[shop(mcp, server_url=server_url)])
    assert caught.value.code == "tool_host_not_allowed"
    assert "agents.tool_hosts_allowlist" in caught.value.message


def connector(gateway: Server, rest: FakeServer, **fields: Any) -> str:
    name = f"orders_{secrets.token_hex(3)}"
    body = {
        "name": name,
        "spec": rest_service.openapi_spec(rest.url),
        "auth": {"type": "api_key", "name": "X-Api-Key", "value": rest_service.API_KEY},
        **fields,
    }
    status, created = call(gateway, "POST", "/admin/connectors", body)
    assert status == 201, created
    return name


def test_an_openapi_connector_calls_the_rest_service_with_its_key(gateway: Server, rest: FakeServer) -> None:
    name = connector(gateway, rest)
    client = project_client(gateway)
    tools: Any = [{"type": "openapi", "connector": name, "operations": ["getOrder"]}]
    response = client.responses.create(model="gpt", input="Show order A-17", tools=tools)
    assert types(response) == ["openapi_call", "message"]
    item = response.output[0].model_dump(warnings=False)
    assert (item["connector"], item["name"], item["status"]) == (name, "getOrder", "completed")
    assert item["output"].startswith("HTTP 200\n") and '"id": "A-17"' in item["output"]
    assert '"status": "shipped"' in response.output_text
    seen = rest.app["seen"][-1]
    assert seen["path"] == "/orders/A-17" and seen["headers"]["X-Api-Key"] == rest_service.API_KEY
    assert rest_service.API_KEY not in response.model_dump_json(warnings=False)
    assert rest_service.API_KEY not in gateway.log.read_text()


def test_an_openapi_redirect_to_a_private_address_is_refused(gateway: Server, rest: FakeServer) -> None:
    name = connector(gateway, rest)
    client = project_client(gateway)
    tools: Any = [{"type": "openapi", "connector": name, "operations": ["exportOrders"]}]
    response = client.responses.create(model="gpt", input="Export the orders", tools=tools)
    item = response.output[0].model_dump(warnings=False)
    assert item["type"] == "openapi_call" and item["status"] == "failed"
    assert "169.254.169.254:80" in item["error"] and "agents.tool_hosts_allowlist" in item["error"]
    assert response.status == "completed"


def test_openapi_mistakes_are_400s(gateway: Server, rest: FakeServer) -> None:
    client = project_client(gateway)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt", input="hi", tools=[{"type": "openapi", "connector": "nope"}])
    assert caught.value.code == "unknown_connector"
    elsewhere = connector(gateway, rest, base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt", input="hi", tools=[{"type": "openapi", "connector": elsewhere}])
    assert caught.value.code == "tool_host_not_allowed"


# The OpenAI Agents SDK, pointed at the gateway with tracing off.


def agents_model(gateway: Server) -> OpenAIResponsesModel:
    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=project_key(gateway), max_retries=0)
    return OpenAIResponsesModel(model="gpt", openai_client=client)


async def test_the_agents_sdk_uses_a_hosted_mcp_tool_the_gateway_runs(gateway: Server, mcp: FakeMcpServer) -> None:
    hosted = HostedMCPTool(tool_config=shop(mcp, require_approval="never"))
    agent = Agent(name="clerk", instructions="Answer about orders.", model=agents_model(gateway), tools=[hosted])
    result = await Runner.run(agent, "Where is order F-6")
    assert "Order F-6: 3 widgets, shipped" in result.final_output
    raw = [item.raw_item for item in result.new_items]
    assert any(getattr(item, "type", None) == "mcp_list_tools" for item in raw)
    assert any(
        getattr(item, "type", None) == "mcp_call" and item.output == "Order F-6: 3 widgets, shipped" for item in raw
    )
    assert mcp.calls[-1] == ("lookup_order", {"order_id": "F-6"})


async def test_the_agents_sdk_runs_its_own_mcp_server_through_function_tools(
    gateway: Server, mcp: FakeMcpServer
) -> None:
    server = MCPServerStreamableHttp(
        {"url": mcp.url}, name="shop", tool_filter=create_static_tool_filter(allowed_tool_names=["lookup_order"])
    )
    async with server:
        agent = Agent(name="clerk", model=agents_model(gateway), mcp_servers=[server])
        result = await Runner.run(agent, "Where is order G-7")
    assert "Order G-7: 3 widgets, shipped" in result.final_output
    assert any(item.type == "tool_call_item" for item in result.new_items)
    assert mcp.calls[-1] == ("lookup_order", {"order_id": "G-7"})

"""The mcp tool on its own, against a real MCP server over Streamable HTTP: listing, filtering,
approval rules, calls, limits and refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from openfoundry.agents.tools.base import ToolContext
from openfoundry.agents.tools.mcp import McpTool, mcp_tool
from openfoundry.config import AgentSettings
from openfoundry.errors import InvalidRequest
from openfoundry.tenancy.auth import Principal
from tests.fakes.mcp_server import HUGE_TEXT_BYTES, FakeMcpServer
from tests.harness import free_port

TOOLS = ["add", "lookup_order", "slow", "huge_text", "flood", "explode"]


@pytest.fixture(scope="module")
def mcp() -> Iterator[FakeMcpServer]:
    server = FakeMcpServer().start()
    yield server
    server.stop()


def context(mcp: FakeMcpServer, **settings: Any) -> ToolContext:
    agents = AgentSettings(**{"tool_hosts_allowlist": [mcp.host], **settings})
    return ToolContext(Principal(is_admin=False, project="p1"), agents)


async def prepared(mcp: FakeMcpServer, **spec: Any) -> tuple[McpTool, dict[str, Any]]:
    settings = spec.pop("settings", {})
    entry = {"type": "mcp", "server_label": "shop", "server_url": mcp.url, **spec}
    tool = await mcp_tool(entry, context(mcp, **settings))
    [item] = await tool.prepare()
    return tool, item


async def test_prepare_lists_the_servers_tools_and_offers_each_as_a_function(mcp: FakeMcpServer) -> None:
    tool, item = await prepared(mcp)
    assert item["type"] == "mcp_list_tools" and item["id"].startswith("mcpl_")
    assert (item["server_label"], item["error"]) == ("shop", None)
    assert [t["name"] for t in item["tools"]] == TOOLS
    lookup = item["tools"][1]
    assert lookup["description"] == "Look up an order by its id."
    assert lookup["annotations"] == {"readOnlyHint": True}
    assert lookup["input_schema"]["properties"]["order_id"]["type"] == "string"
    functions = tool.functions()
    assert [f["function"]["name"] for f in functions] == [f"shop__{name}" for name in TOOLS]
    assert functions[0]["function"]["parameters"]["required"] == ["a", "b"]
    assert tool.owns("shop__add") and not tool.owns("add") and not tool.owns("other__add")


async def test_allowed_tools_filter_by_name_or_by_read_only(mcp: FakeMcpServer) -> None:
    _, item = await prepared(mcp, allowed_tools=["add", "explode", "not-there"])
    assert [t["name"] for t in item["tools"]] == ["add", "explode"]
    _, item = await prepared(mcp, allowed_tools={"read_only": True})
    assert [t["name"] for t in item["tools"]] == ["lookup_order"]
    _, item = await prepared(mcp, allowed_tools={"tool_names": ["slow", "add"]})
    assert [t["name"] for t in item["tools"]] == ["add", "slow"]


async def test_a_call_returns_the_tools_real_output(mcp: FakeMcpServer) -> None:
    tool, _ = await prepared(mcp)
    result = await tool.call("shop__lookup_order", '{"order_id": "A-17"}', "mcp_1")
    assert result.output == "Order A-17: 3 widgets, shipped"
    assert result.item == {
        "type": "mcp_call",
        "id": "mcp_1",
        "server_label": "shop",
        "name": "lookup_order",
        "arguments": '{"order_id": "A-17"}',
        "output": "Order A-17: 3 widgets, shipped",
        "error": None,
        "status": "completed",
    }
    assert (await tool.call("shop__add", '{"a": 2, "b": 40}', "mcp_2")).item["output"] == "42"
    assert ("add", {"a": 2, "b": 40}) in mcp.calls


async def test_failures_are_items_with_the_error(mcp: FakeMcpServer) -> None:
    tool, _ = await prepared(mcp)
    failed = await tool.call("shop__explode", '{"reason": "boom"}', "mcp_1")
    assert failed.item["status"] == "failed" and failed.item["output"] is None
    assert "exploded: boom" in failed.item["error"] and "exploded: boom" in failed.output
    bad = await tool.call("shop__add", "{not json", "mcp_2")
    assert bad.item["status"] == "failed" and "not valid JSON" in bad.item["error"]
    wrong = await tool.call("shop__add", '{"a": "x"}', "mcp_3")
    assert wrong.item["status"] == "failed" and "validation error" in wrong.item["error"]


async def test_a_slow_tool_is_cut_off_at_the_tool_timeout(mcp: FakeMcpServer) -> None:
    tool, _ = await prepared(mcp, settings={"tool_timeout": 1.0})
    started = time.monotonic()
    result = await tool.call("shop__slow", '{"seconds": 20}', "mcp_1")
    assert time.monotonic() - started < 5
    assert result.item["status"] == "failed" and result.item["error"] == "no answer within 1 s"


async def test_output_is_cut_to_the_configured_size(mcp: FakeMcpServer) -> None:
    tool, _ = await prepared(mcp, settings={"max_tool_output_bytes": 1000})
    result = await tool.call("shop__huge_text", '{"topic": "cats"}', "mcp_1")
    assert HUGE_TEXT_BYTES > 1000 >= len(result.output.encode())
    assert result.output.startswith("cats cats") and result.output.endswith("limit of 1000 bytes]")
    assert result.item["output"] == result.output


async def test_an_answer_far_over_the_limit_is_not_read_to_the_end(mcp: FakeMcpServer) -> None:
    tool, _ = await prepared(mcp, settings={"max_tool_output_bytes": 1000})
    result = await tool.call("shop__flood", '{"topic": "x"}', "mcp_1")
    assert result.item["status"] == "failed"
    assert "answer passed 4194304 bytes" in result.item["error"]


async def test_headers_reach_the_server_and_are_never_echoed(mcp: FakeMcpServer) -> None:
    tool, item = await prepared(mcp, server_url=mcp.private_url, headers={"x-mcp-token": mcp.token})
    assert len(item["tools"]) == len(TOOLS)
    assert (await tool.call("shop__add", '{"a": 1, "b": 1}', "mcp_1")).output == "2"
    with pytest.raises(InvalidRequest) as caught:
        await prepared(mcp, server_url=mcp.private_url, headers={"x-mcp-token": "wrong-token-value"})
    error = caught.value
    assert (error.status, error.code, error.param) == (400, "mcp_connection_error", "tools")
    assert "'shop'" in error.message and "HTTP 401" in error.message
    assert "wrong-token-value" not in error.message


async def test_an_unreachable_server_is_a_400_naming_the_label(mcp: FakeMcpServer) -> None:
    port = free_port()
    with pytest.raises(InvalidRequest) as caught:
        await prepared(
            mcp, server_url=f"http://127.0.0.1:{port}/mcp", settings={"tool_hosts_allowlist": [f"127.0.0.1:{port}"]}
        )
    assert caught.value.code == "mcp_connection_error"
    assert caught.value.message == "Error retrieving tool list from MCP server 'shop': could not connect"


async def test_hosts_outside_the_allowlist_are_refused_before_connecting(mcp: FakeMcpServer) -> None:
    before = len(mcp.calls)
    for allowlist in ([], ["*"], ["127.0.0.1:1"]):
        with pytest.raises(InvalidRequest) as caught:
            await prepared(mcp, settings={"tool_hosts_allowlist": allowlist})
        assert caught.value.code == "tool_host_not_allowed"
    assert len(mcp.calls) == before


async def test_approval_follows_openais_rules(mcp: FakeMcpServer) -> None:
    tool, _ = await prepared(mcp)
    assert tool.approval_needed("shop__add"), "approval is required by default"
    assert tool.approval_item("shop__add", '{"a":1}', "mcpr_1") == {
        "type": "mcp_approval_request",
        "id": "mcpr_1",
        "server_label": "shop",
        "name": "add",
        "arguments": '{"a":1}',
    }
    tool, _ = await prepared(mcp, require_approval="never")
    assert not tool.approval_needed("shop__add")
    tool, _ = await prepared(mcp, require_approval={"never": {"tool_names": ["add"]}})
    assert not tool.approval_needed("shop__add") and tool.approval_needed("shop__slow")
    tool, _ = await prepared(mcp, require_approval={"always": {"tool_names": ["explode"]}})
    assert tool.approval_needed("shop__explode") and not tool.approval_needed("shop__add")
    tool, _ = await prepared(mcp, require_approval={"never": {"read_only": True}})
    assert not tool.approval_needed("shop__lookup_order") and tool.approval_needed("shop__add")


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"server_label": "shop"}, "server_url is required"),
        ({"server_label": "bad label!", "server_url": "http://x/"}, "server_label"),
        ({"server_url": "http://x/"}, "server_label"),
        ({"server_label": "shop", "server_url": "http://x/", "require_approval": "sometimes"}, "require_approval"),
        ({"server_label": "shop", "server_url": "http://x/", "headers": "secret-header"}, "headers"),
    ],
)
async def test_bad_mcp_entries_are_400s(mcp: FakeMcpServer, spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await mcp_tool({"type": "mcp", **spec}, context(mcp))
    assert caught.value.param == "tools" and fragment in caught.value.message
    assert "secret-header" not in json.dumps(caught.value.to_openai())

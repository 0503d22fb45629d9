"""A request's tools: `function` tools the client runs, and server tools made by the factories
(`mcp`, `openapi`, `file_search`, see tools/base.py) that the runner calls itself, within the limits
of `agents` settings (time per call, output size)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openfoundry.agents.items import TRACE, new_id
from openfoundry.agents.tools.base import ServerTool, ToolContext, ToolFactory, ToolResult
from openfoundry.config import AgentSettings
from openfoundry.errors import FoundryError, InvalidRequest

log = logging.getLogger("openfoundry.agents")
_ITEM_PREFIXES = {"mcp": "mcp", "file_search": "fs", "openapi": "oapi"}
_MATCH_KEYS = {"mcp": "server_label", "openapi": "connector"}
"""The spec field that tells two tools of a type apart, for `tool_choice` entries that name one."""


@dataclass(slots=True)
class BoundTool:
    spec: dict[str, Any]
    tool: ServerTool

    def new_item_id(self) -> str:
        return new_id(_ITEM_PREFIXES.get(self.tool.type, "tc"))

    def function_names(self) -> list[str]:
        return [function["function"]["name"] for function in self.tool.functions()]

    def matches(self, choice: dict[str, Any]) -> bool:
        key = _MATCH_KEYS.get(self.spec["type"])
        return choice.get("type") == self.spec["type"] and (
            key is None or choice.get(key) is None or choice.get(key) == self.spec.get(key)
        )


@dataclass(slots=True)
class Toolset:
    functions: list[dict[str, Any]]
    """The client's function tools, in the Chat Completions shape."""
    server: list[BoundTool]

    def chat_tools(self) -> list[dict[str, Any]]:
        return self.functions + [function for bound in self.server for function in bound.tool.functions()]

    def owner(self, name: str) -> BoundTool | None:
        """The server tool a called function belongs to; None for the client's function tools."""
        if any(function["function"]["name"] == name for function in self.functions):
            return None
        return next((bound for bound in self.server if bound.tool.owns(name)), None)

    def chat_tool_choice(self, choice: Any) -> tuple[Any, list[dict[str, Any]]]:
        """The Chat Completions `tool_choice` for a Responses one, and the tools to offer with it."""
        tools = self.chat_tools()
        if isinstance(choice, str):
            return choice, tools
        if choice["type"] == "function":
            if not any(tool["function"]["name"] == choice["name"] for tool in tools):
                raise InvalidRequest(
                    f"tool_choice names the function {choice['name']!r}, not in 'tools'", param="tool_choice"
                )
            return {"type": "function", "function": {"name": choice["name"]}}, tools
        if choice["type"] == "allowed_tools":
            names = [name for entry in _entries(choice) for name in self._names(entry)]
            mode = "required" if choice.get("mode") == "required" else "auto"
            return mode, [tool for tool in tools if tool["function"]["name"] in names]
        names = self._names(choice)
        if not names:
            raise InvalidRequest(
                f"tool_choice names a {choice['type']!r} tool that is not in 'tools'", param="tool_choice"
            )
        if len(names) == 1:
            return {"type": "function", "function": {"name": names[0]}}, tools
        return "required", [tool for tool in tools if tool["function"]["name"] in names]

    def _names(self, entry: dict[str, Any]) -> list[str]:
        if entry.get("type") == "function":
            return [entry["name"]] if isinstance(entry.get("name"), str) else []
        return [name for bound in self.server if bound.matches(entry) for name in bound.function_names()]


def _entries(choice: dict[str, Any]) -> list[dict[str, Any]]:
    entries = choice.get("tools")
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise InvalidRequest("'tool_choice.tools' must be an array of tool objects", param="tool_choice.tools")
    return entries


async def build_toolset(
    specs: list[dict[str, Any]], factories: Mapping[str, ToolFactory], context: ToolContext
) -> Toolset:
    """Every entry of `tools` made usable; a kind no factory serves is a 400."""
    functions: list[dict[str, Any]] = []
    server: list[BoundTool] = []
    for index, spec in enumerate(specs):
        if spec["type"] == "function":
            functions.append(_chat_function(spec))
            continue
        factory = factories.get(spec["type"])
        if factory is None:
            served = ", ".join(["function", *sorted(factories)])
            raise InvalidRequest(
                f"tool type {spec['type']!r} is not supported here; supported: {served}",
                param=f"tools[{index}].type",
                code="invalid_value",
            )
        server.append(BoundTool(spec, await factory(spec, context)))
    return Toolset(functions, server)


async def prepare(toolset: Toolset) -> list[dict[str, Any]]:
    """Run each server tool's preparation (e.g. listing an MCP server's tools); returns the items to
    show. Function names must then be unique across the request's tools."""
    items: list[dict[str, Any]] = []
    for bound in toolset.server:
        items += await bound.tool.prepare()
    names = [tool["function"]["name"] for tool in toolset.chat_tools()]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidRequest(f"tools define the function name(s) {', '.join(duplicates)} more than once", param="tools")
    return items


async def run_call(bound: BoundTool, name: str, arguments: str, settings: AgentSettings) -> ToolResult:
    """One server tool call within the time limit; its output cut to size. A call that fails or takes
    too long is an item with the error, so the model hears about it and the response goes on."""
    item_id = bound.new_item_id()
    try:
        async with asyncio.timeout(settings.tool_timeout):
            result = await bound.tool.call(name, arguments, item_id)
    except TimeoutError:
        result = _failed(bound, name, arguments, item_id, f"the tool call took more than {settings.tool_timeout:g} s")
    except FoundryError as exc:
        result = _failed(bound, name, arguments, item_id, exc.message)
    except Exception:
        log.exception("server tool %s failed calling %s", bound.tool.type, name)
        result = _failed(bound, name, arguments, item_id, "the tool failed; the server log has the details")
    output = cut(result.output, settings.max_tool_output_bytes)
    trace = {"name": name, "arguments": arguments, "output": output}
    return ToolResult({**result.item, TRACE: trace}, output, result.annotations)


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, never splitting a character."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def _failed(bound: BoundTool, name: str, arguments: str, item_id: str, message: str) -> ToolResult:
    item: dict[str, Any] = {
        "id": item_id,
        "type": f"{bound.tool.type}_call",
        "status": "failed",
        "name": name,
        "arguments": arguments,
        "output": None,
        "error": message,
    }
    if "server_label" in bound.spec:
        item["server_label"] = bound.spec["server_label"]
    return ToolResult(item, f"error: {message}")


def _chat_function(spec: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": spec["name"], "parameters": spec.get("parameters") or {"type": "object"}}
    if spec.get("description"):
        function["description"] = spec["description"]
    if spec.get("strict") is not None:
        function["strict"] = spec["strict"]
    return {"type": "function", "function": function}

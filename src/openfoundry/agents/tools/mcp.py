"""The `mcp` tool: a remote MCP server over Streamable HTTP, run by the server during a response.

`prepare()` lists the server's tools (one `mcp_list_tools` item); each becomes a function named
`{server_label}__{tool}` (see naming.py). Each MCP operation opens its own session and closes it when
done, since the runner keeps no hook to close one at the end of a response; against the fake server in
the tests a session costs about 80 ms. Every HTTP request goes through the egress check
(mcp_transport.py). `headers` and `authorization` are sent to the MCP server and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import httpx2
import orjson
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, Tool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openfoundry.agents.egress import Egress
from openfoundry.agents.tools.base import ToolContext, ToolResult
from openfoundry.agents.tools.mcp_transport import EgressTransport
from openfoundry.agents.tools.naming import call_arguments, cut_text, function_name, new_id
from openfoundry.config import describe_errors
from openfoundry.errors import FoundryError, InvalidRequest

T = TypeVar("T")
_MAX_PAGES = 100
_MIN_ANSWER_BYTES = 4 * 1024 * 1024


def _answer_limit(max_output_bytes: int) -> int:
    """The most an MCP answer may carry before the transport stops reading it: room for JSON escaping
    and the structured copy of the text, whose output is cut to `max_output_bytes` afterwards."""
    return max(16 * max_output_bytes, _MIN_ANSWER_BYTES)


class ToolFilter(BaseModel):
    model_config = ConfigDict(extra="allow")
    tool_names: list[str] | None = None
    read_only: bool | None = None

    def matches(self, tool: Tool) -> bool:
        """A tool matches when it meets every criterion given (a name in `tool_names`, read-only)."""
        if self.tool_names is not None and tool.name not in self.tool_names:
            return False
        read_only = bool(tool.annotations and tool.annotations.read_only_hint)
        return self.read_only is None or self.read_only == read_only


class ApprovalFilter(BaseModel):
    model_config = ConfigDict(extra="allow")
    always: ToolFilter | None = None
    never: ToolFilter | None = None


class McpSpec(BaseModel):
    """A request's `{"type": "mcp", …}` tool entry; fields this server does not use are accepted."""

    model_config = ConfigDict(extra="allow")
    type: Literal["mcp"]
    server_label: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    server_url: str | None = None
    connector_id: str | None = None
    headers: dict[str, str] | None = None
    authorization: str | None = None
    allowed_tools: list[str] | ToolFilter | None = None
    require_approval: Literal["always", "never"] | ApprovalFilter | None = None
    server_description: str | None = None

    def allows(self, tool: Tool) -> bool:
        if self.allowed_tools is None:
            return True
        if isinstance(self.allowed_tools, list):
            return tool.name in self.allowed_tools
        return self.allowed_tools.matches(tool)

    def needs_approval(self, tool: Tool) -> bool:
        """OpenAI's rule: approval is required unless the request says otherwise ("always" by default)."""
        rule = self.require_approval
        if rule is None or isinstance(rule, str):
            return rule != "never"
        if rule.always is not None and rule.always.matches(tool):
            return True
        if rule.never is not None and rule.never.matches(tool):
            return False
        return rule.never is not None or rule.always is None


class McpFailure(Exception):
    """An MCP operation failed; the message says why, never with the request's headers."""


def parse_spec(spec: dict[str, Any]) -> McpSpec:
    try:
        parsed = McpSpec.model_validate(spec)
    except ValidationError as exc:
        raise InvalidRequest(
            "invalid mcp tool: " + "; ".join(describe_errors(exc)), param="tools", code="invalid_tool"
        ) from exc
    if parsed.server_url is None:
        raise InvalidRequest(
            f"mcp tool {parsed.server_label!r}: server_url is required (connector_id is not supported here)",
            param="tools",
            code="invalid_tool",
        )
    return parsed


async def mcp_tool(spec: dict[str, Any], context: ToolContext) -> McpTool:
    """The ToolFactory for `mcp` entries."""
    return McpTool(parse_spec(spec), context, Egress(context.settings.tool_hosts_allowlist))


class McpTool:
    type = "mcp"

    def __init__(self, spec: McpSpec, context: ToolContext, egress: Egress) -> None:
        assert spec.server_url is not None, "parse_spec requires it"
        self.spec = spec
        self.label = spec.server_label
        self._url = spec.server_url
        self._settings = context.settings
        self._egress = egress
        self._offered: dict[str, Tool] = {}

    async def prepare(self) -> list[dict[str, Any]]:
        await self._egress.check(self._url)
        try:
            tools = await self._session(_list_tools)
        except McpFailure as exc:
            raise InvalidRequest(
                f"Error retrieving tool list from MCP server {self.label!r}: {exc}",
                param="tools",
                code="mcp_connection_error",
            ) from exc
        allowed = [tool for tool in tools if self.spec.allows(tool)]
        self._offered = {self.function_for(tool.name): tool for tool in allowed}
        return [
            {
                "type": "mcp_list_tools",
                "id": new_id("mcpl"),
                "server_label": self.label,
                "tools": [_listed(tool) for tool in allowed],
                "error": None,
            }
        ]

    def function_for(self, tool_name: str) -> str:
        """The function name the model sees for one of this server's tools."""
        return function_name(self.label, tool_name)

    def functions(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": tool.description or tool.title or tool.name,
                    "parameters": tool.input_schema,
                },
            }
            for name, tool in self._offered.items()
        ]

    def owns(self, name: str) -> bool:
        return name in self._offered

    def approval_needed(self, name: str) -> bool:
        return self.spec.needs_approval(self._offered[name])

    def approval_item(self, name: str, arguments: str, item_id: str) -> dict[str, Any]:
        return {
            "type": "mcp_approval_request",
            "id": item_id,
            "server_label": self.label,
            "name": self._offered[name].name,
            "arguments": arguments,
        }

    async def call(self, name: str, arguments: str, item_id: str) -> ToolResult:
        tool_name = self._offered[name].name
        item: dict[str, Any] = {
            "type": "mcp_call",
            "id": item_id,
            "server_label": self.label,
            "name": tool_name,
            "arguments": arguments,
            "output": None,
            "error": None,
            "status": "completed",
        }
        limit = self._settings.max_tool_output_bytes
        try:
            result = await self._session(_call(tool_name, call_arguments(arguments)))
        except (McpFailure, ValueError, FoundryError) as exc:
            message = exc.message if isinstance(exc, FoundryError) else str(exc)
            item |= {"error": cut_text(message, limit), "status": "failed"}
            return ToolResult(item, f"Error calling MCP tool {tool_name!r}: {item['error']}")
        text = cut_text(_text(result), limit)
        if result.is_error:
            item |= {"error": text, "status": "failed"}
            return ToolResult(item, f"MCP tool {tool_name!r} failed: {text}")
        item["output"] = text
        return ToolResult(item, text)

    async def _session(self, operation: Callable[[Client], Awaitable[T]]) -> T:
        """Run one operation in a session of its own, within the tool time limit."""
        limit = self._settings.tool_timeout
        transport = EgressTransport(self._egress, _answer_limit(self._settings.max_tool_output_bytes))
        try:  # the session's deadline decides; the client's own timeout, a second later, never races it
            async with (
                asyncio.timeout(limit),
                httpx2.AsyncClient(transport=transport, headers=self._headers(), timeout=limit + 1) as http,
                Client(streamable_http_client(self._url, http_client=http), cache=None) as client,
            ):
                return await operation(client)
        except TimeoutError as exc:
            raise McpFailure(f"no answer within {limit:g} s") from exc
        except Exception as exc:
            if transport.refusal is not None:
                raise transport.refusal from exc
            raise McpFailure(transport.problem or transport.http_problem or _describe(exc)) from exc

    def _headers(self) -> dict[str, str]:
        headers = dict(self.spec.headers or {})
        if self.spec.authorization:
            headers["Authorization"] = f"Bearer {self.spec.authorization}"
        return headers


async def _list_tools(client: Client) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _call(name: str, arguments: dict[str, Any]) -> Callable[[Client], Awaitable[CallToolResult]]:
    async def call(client: Client) -> CallToolResult:
        return await client.call_tool(name, arguments)

    return call



def _listed(tool: Tool) -> dict[str, Any]:
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    return {
        "name": tool.name,
        "input_schema": tool.input_schema,
        "description": tool.description,
        "annotations": annotations or None,
    }


def _text(result: CallToolResult) -> str:
    """The result's text parts joined; its structured content, or the other parts, as JSON otherwise."""
    texts = [part.text for part in result.content if isinstance(part, TextContent)]
    if texts:
        return "\n".join(texts)
    if result.structured_content is not None:
        return orjson.dumps(result.structured_content).decode()
    return orjson.dumps([part.model_dump(mode="json", by_alias=True) for part in result.content]).decode()


def _describe(exc: BaseException) -> str:
    """A short reason for a failed session: the first real error inside any exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx2.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx2.TimeoutException):
        return "timed out"
    if isinstance(exc, MCPError):
        return str(exc)
    return type(exc).__name__

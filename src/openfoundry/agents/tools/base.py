"""What every server-side tool is to the response runner.

A request's `tools` entry of type `mcp`, `openapi` or `file_search` becomes one `ServerTool`. The
runner offers the model the tool's functions (Chat Completions shape), and when the model calls one
of them, runs it here and feeds `ToolResult.output` back to the model; `ToolResult.item` is the output
item the client sees (`mcp_call`, `file_search_call`, …). `function` tools are not server tools: the
runner hands their calls back to the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from openfoundry.config import AgentSettings
from openfoundry.tenancy.auth import Principal


@dataclass(slots=True)
class ToolContext:
    """Who runs the response and under which rules."""

    principal: Principal
    settings: AgentSettings

    @property
    def project(self) -> str:
        """The tenant that owns what the tools read (files, vector stores, connectors); "" in open mode."""
        return self.principal.project or ""


@dataclass(slots=True)
class ToolResult:
    item: dict[str, Any]
    """The output item the client sees."""
    output: str
    """What the model is told the tool returned (already cut to the configured size)."""
    annotations: list[dict[str, Any]] = field(default_factory=list)
    """Annotations (`file_citation`) the runner puts on the next assistant message's output_text."""


class ServerTool(Protocol):
    type: str
    """The request's tool type: "mcp", "openapi" or "file_search"."""

    async def prepare(self) -> list[dict[str, Any]]:
        """Work before the model runs (listing an MCP server's tools…); returns output items to show
        (e.g. `mcp_list_tools`). Raises FoundryError (400) when the tool cannot be used."""
        ...

    def functions(self) -> list[dict[str, Any]]:
        """The functions offered to the model: `{"type": "function", "function": {name, description,
        parameters}}`; names are unique across the request's tools."""
        ...

    def owns(self, name: str) -> bool:
        """Whether a function name the model called belongs to this tool."""
        ...

    def approval_needed(self, name: str) -> bool:
        """Whether the client must approve this call first (mcp `require_approval`)."""
        ...

    def approval_item(self, name: str, arguments: str, item_id: str) -> dict[str, Any]:
        """The `mcp_approval_request` item asking the client to approve a call."""
        ...

    async def call(self, name: str, arguments: str, item_id: str) -> ToolResult:
        """Run one call; `arguments` is the model's JSON text. A failing call is a ToolResult whose
        item carries the error, not an exception, so the model can react to it."""
        ...


class ToolFactory(Protocol):
    """Makes the ServerTool for one `tools` entry of a request; the runner holds one per tool type.
    Raises FoundryError (400, param "tools") for an entry it cannot accept."""

    async def __call__(self, spec: dict[str, Any], context: ToolContext) -> ServerTool: ...

"""A real MCP server (the `mcp` SDK's MCPServer over Streamable HTTP) on a loopback port, in a thread.

`/mcp` is open; `/private/mcp` serves the same tools but answers 401 unless the request carries the
`x-mcp-token` header with the server's token. Every tool call is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HUGE_TEXT_BYTES = 300_000
FLOOD_BYTES = 5_000_000
TOKEN_HEADER = "x-mcp-token"


def build(calls: list[tuple[str, dict[str, Any]]]) -> MCPServer:
    server = MCPServer("fake-tools", instructions="Tools for the gateway's tests.")

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        calls.append(("add", {"a": a, "b": b}))
        return a + b

    @server.tool(description="Look up an order by its id.", annotations=ToolAnnotations(read_only_hint=True))
    def lookup_order(order_id: str) -> str:
        calls.append(("lookup_order", {"order_id": order_id}))
        return f"Order {order_id}: 3 widgets, shipped"

    @server.tool(description="Wait for a number of seconds, then answer.")
    async def slow(seconds: float) -> str:
        calls.append(("slow", {"seconds": seconds}))
        await asyncio.sleep(seconds)
        return f"waited {seconds} s"

    @server.tool(description="A very long text about a topic.")
    def huge_text(topic: str) -> str:
        calls.append(("huge_text", {"topic": topic}))
        return (topic + " ") * (HUGE_TEXT_BYTES // (len(topic) + 1))

    @server.tool(description="More text than any tool answer may carry.")
    def flood(topic: str) -> str:
        calls.append(("flood", {"topic": topic}))
        return "x" * FLOOD_BYTES

    @server.tool(description="Always fails.")
    def explode(reason: str) -> str:
        calls.append(("explode", {"reason": reason}))
        raise ToolError(f"exploded: {reason}")

    return server


def _guarded(app: ASGIApp, token: str) -> ASGIApp:
    """`/private/mcp` → `/mcp`, for requests that carry the token; 401 for those that do not."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/private/"):
            headers = dict(scope["headers"])
            if headers.get(TOKEN_HEADER.encode()) != token.encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"missing or wrong token"})
                return
            scope = {**scope, "path": scope["path"].removeprefix("/private"), "raw_path": None}
        await app(scope, receive, send)

    return guarded


class FakeMcpServer:
    def __init__(self, token: str = "mcp-secret-token") -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        app = build(self.calls).streamable_http_app(transport_security=security)
        config = uvicorn.Config(_guarded(app, token), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def private_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/private/mcp"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeMcpServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake MCP server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

"""The `openapi` tool: `{"type": "openapi", "connector": NAME, "operations"?: [...]}` offers a
registered connector's operations as functions named `{connector}__{operation}` and calls its API.

Connectors are global (the admin registers them); any project may use any of them. Each call checks
every hop with the egress rules and connects to the checked address; redirects are followed here, at
most five, and the connector's credential goes only to its own origin. The answer (status and body)
is the tool's output whatever the status, so the model sees a 404 as a 404.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from openfoundry.agents.connectors import ApiSpec, Operation, PreparedRequest, parse_spec
from openfoundry.agents.egress import Destination, Egress
from openfoundry.agents.tools.base import ToolContext, ToolResult
from openfoundry.agents.tools.naming import call_arguments, cut_text, function_name
from openfoundry.errors import InvalidRequest
from openfoundry.store.connectors import ConnectorStore

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Credential:
    """Where the connector's credential goes on each request to its own origin."""

    headers: dict[str, str]
    query: dict[str, str]

    @classmethod
    def from_auth(cls, auth: dict[str, Any]) -> Credential:
        kind = auth.get("type")
        if kind == "bearer":
            return cls({"Authorization": f"Bearer {auth['token']}"}, {})
        if kind == "api_key" and auth.get("in") == "query":
            return cls({}, {auth["name"]: auth["value"]})
        if kind == "api_key":
            return cls({auth["name"]: auth["value"]}, {})
        return cls({}, {})


class CallFailed(Exception):
    """The API could not be asked or did not answer; the message says why."""


class OpenApiTools:
    """The ToolFactory for `openapi` entries."""

    def __init__(self, store: ConnectorStore) -> None:
        self._store = store
        self._parsed: dict[str, tuple[dt.datetime, ApiSpec]] = {}

    async def __call__(self, spec: dict[str, Any], context: ToolContext) -> OpenApiTool:
        name = spec.get("connector")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("openapi tool: `connector` (a connector name) is required", param="tools")
        row = await self._store.get(name)
        if row is None:
            raise InvalidRequest(f"no connector named {name!r}", param="tools", code="unknown_connector")
        api = self._api(row)
        return OpenApiTool(
            name,
            api,
            _selected(api, spec.get("operations"), name),
            Credential.from_auth(row["auth"]),
            context,
            Egress(context.settings.tool_hosts_allowlist),
        )

    def _api(self, row: dict[str, Any]) -> ApiSpec:
        cached = self._parsed.get(row["name"])
        if cached is not None and cached[0] == row["updated_at"]:
            return cached[1]
        api = parse_spec(row["spec"], row["base_url"])
        self._parsed[row["name"]] = (row["updated_at"], api)
        return api


def _selected(api: ApiSpec, wanted: Any, connector: str) -> list[Operation]:
    if wanted is None:
        return list(api.operations)
    if not isinstance(wanted, list) or not all(isinstance(name, str) for name in wanted):
        raise InvalidRequest("openapi tool: `operations` must be a list of operation names", param="tools")
    known = {operation.name: operation for operation in api.operations}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise InvalidRequest(
            f"connector {connector!r} has no operation {', '.join(map(repr, unknown))} (it has {', '.join(known)})",
            param="tools",
            code="unknown_operation",
        )
    return [known[name] for name in wanted]


class OpenApiTool:
    type = "openapi"

    def __init__(
        self,
        connector: str,
        api: ApiSpec,
        operations: list[Operation],
        credential: Credential,
        context: ToolContext,
        egress: Egress,
    ) -> None:
        self.connector = connector
        self._api = api
        self._operations = {function_name(connector, operation.name): operation for operation in operations}
        self._credential = credential
        self._settings = context.settings
        self._egress = egress

    async def prepare(self) -> list[dict[str, Any]]:
        await self._egress.check(self._api.server_url)
        return []

    def functions(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": operation.description or f"{operation.method} {operation.path}",
                    "parameters": operation.schema,
                },
            }
            for name, operation in self._operations.items()
        ]

    def owns(self, name: str) -> bool:
        return name in self._operations

    def approval_needed(self, name: str) -> bool:
        return False

    def approval_item(self, name: str, arguments: str, item_id: str) -> dict[str, Any]:
        raise NotImplementedError("openapi calls need no approval")

    async def call(self, name: str, arguments: str, item_id: str) -> ToolResult:
        operation = self._operations[name]
        item: dict[str, Any] = {
            "type": "openapi_call",
            "id": item_id,
            "connector": self.connector,
            "name": operation.name,
            "arguments": arguments,
            "status": "completed",
            "output": None,
            "error": None,
        }
        limit = self._settings.max_tool_output_bytes
        try:
            prepared = operation.request(self._api.server_url, call_arguments(arguments))
            async with asyncio.timeout(self._settings.tool_timeout):
                status, body = await self._send(prepared, limit)
        except (ValueError, CallFailed, InvalidRequest, aiohttp.ClientError, TimeoutError) as exc:
            item |= {"status": "failed", "error": cut_text(self._reason(exc), limit)}
            return ToolResult(item, f"Error calling {operation.name}: {item['error']}")
        item["output"] = cut_text(f"HTTP {status}\n{body}", limit)
        return ToolResult(item, item["output"])

    def _reason(self, exc: Exception) -> str:
        if isinstance(exc, InvalidRequest):
            return exc.message
        if isinstance(exc, TimeoutError):
            return f"no answer within {self._settings.tool_timeout:g} s"
        if isinstance(exc, aiohttp.ClientError):
            return f"could not reach the API ({type(exc).__name__})"
        return str(exc)

    async def _send(self, prepared: PreparedRequest, limit: int) -> tuple[int, str]:
        """Send the request, following redirects hop by hop; (status, body text of at most limit+1 bytes)."""
        method, url, body = prepared.method, URL(prepared.url, encoded=True), prepared.json
        home = _origin(URL(self._api.server_url))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            for _ in range(MAX_REDIRECTS + 1):
                destination = await self._egress.check(str(url))
                own = _origin(url) == home
                headers = prepared.headers | (self._credential.headers if own else {})
                target = url.update_query(self._credential.query) if own and self._credential.query else url
                async with session.request(
                    method,
                    target.with_host(destination.address),
                    headers=headers | {"Host": _host_header(destination)},
                    json=body,
                    allow_redirects=False,
                    server_hostname=destination.host if destination.scheme == "https" else None,
                ) as response:
                    location = response.headers.get("Location")
                    if response.status not in _REDIRECTS or not location:
                        data = await _read(response, limit)
                        return response.status, data.decode(response.charset or "utf-8", errors="replace")
                url = url.join(URL(location))
                if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
        raise CallFailed(f"the API redirected more than {MAX_REDIRECTS} times")



def _origin(url: URL) -> tuple[str, str, int]:
    scheme = (url.scheme or "").lower()
    return scheme, (url.host or "").lower(), url.port or _DEFAULT_PORTS.get(scheme, 0)


def _host_header(destination: Destination) -> str:
    host = f"[{destination.host}]" if ":" in destination.host else destination.host
    default = _DEFAULT_PORTS[destination.scheme] == destination.port
    return host if default else f"{host}:{destination.port}"


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most limit+1 bytes of the body: enough to know it was longer than the limit."""
    data = bytearray()
    while len(data) <= limit:
        part = await response.content.read(limit + 1 - len(data))
        if not part:
            break
        data += part
    return bytes(data)

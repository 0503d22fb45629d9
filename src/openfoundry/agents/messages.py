"""Responses items -> Chat Completions messages, the canonical shape every deployment speaks.

Function calls group into one assistant message (with the text before them) whose tool messages
follow; a server-side tool call becomes an assistant tool call plus its result, so the model sees what
its tools returned in earlier turns. Pending approval requests are left out until they are answered.
"""

from __future__ import annotations

from typing import Any

import orjson

from openfoundry.agents.items import TRACE, text_of
from openfoundry.errors import InvalidRequest

DECLINED = "The user did not approve this tool call."
_NOT_REPLAYED = frozenset({"mcp_approval_request", "mcp_list_tools", "reasoning", "item_reference"})


def chat_messages(instructions: str | None, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    builder = _Builder(items)
    if instructions:
        builder.messages.append({"role": "system", "content": instructions})
    for item in items:
        builder.add(item)
    builder.flush()
    return builder.messages


def check_tool_pairs(items: list[dict[str, Any]]) -> None:
    """Every function call has its output and every output its call (400 otherwise, as OpenAI does);
    every approval response answers a request."""
    calls = {item["call_id"] for item in items if item.get("type") == "function_call"}
    outputs = {item["call_id"] for item in items if item.get("type") == "function_call_output"}
    requests = {item["id"] for item in items if item.get("type") == "mcp_approval_request"}
    if calls - outputs:
        missing = min(calls - outputs)
        raise InvalidRequest(f"No tool output found for function call {missing}.", param="input")
    if outputs - calls:
        unknown = min(outputs - calls)
        raise InvalidRequest(f"No tool call found for function call output with call_id {unknown}.", param="input")
    for item in items:
        if item.get("type") == "mcp_approval_response" and item["approval_request_id"] not in requests:
            raise InvalidRequest(f"No MCP approval request found with id {item['approval_request_id']}.", param="input")


class _Builder:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.requests = {item["id"]: item for item in items if item.get("type") == "mcp_approval_request"}
        self._text: list[str] = []
        self._calls: list[dict[str, Any]] = []
        self._results: list[dict[str, Any]] = []

    def add(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind == "message":
            self._message(item)
        elif kind == "function_call":
            self._calls.append(_tool_call(item["call_id"], item["name"], item["arguments"]))
        elif kind == "function_call_output":
            self.flush()
            self.messages.append(_tool_result(item["call_id"], text_of(item["output"])))
        elif kind == "mcp_approval_response":
            if not item["approve"] and item["approval_request_id"] in self.requests:
                self._declined(self.requests[item["approval_request_id"]], item.get("reason"))
        elif kind not in _NOT_REPLAYED:
            self._server_call(item)

    def flush(self) -> None:
        if self._text or self._calls:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text) or None}
            if self._calls:
                message["tool_calls"] = self._calls
            self.messages.append(message)
            self.messages.extend(self._results)
        self._text, self._calls, self._results = [], [], []

    def _message(self, item: dict[str, Any]) -> None:
        if item["role"] == "assistant":
            if self._calls:
                self.flush()
            self._text.append(text_of(item["content"]))
            return
        self.flush()
        role = "system" if item["role"] == "developer" else item["role"]
        self.messages.append({"role": role, "content": _content(item["content"])})

    def _server_call(self, item: dict[str, Any]) -> None:
        name, arguments, output = _replay(item)
        if name is None:
            return
        self._calls.append(_tool_call(item["id"], name, arguments))
        self._results.append(_tool_result(item["id"], output))

    def _declined(self, request: dict[str, Any], reason: Any) -> None:
        trace = request.get(TRACE) or {}
        name = trace.get("name") or request.get("name") or "tool"
        self._calls.append(_tool_call(request["id"], name, str(request.get("arguments") or "{}")))
        self._results.append(_tool_result(request["id"], DECLINED + (f" Reason: {reason}" if reason else "")))


def _replay(item: dict[str, Any]) -> tuple[str | None, str, str]:
    """(function name, arguments, output) of a server tool call item, as the model saw it."""
    trace = item.get(TRACE)
    if isinstance(trace, dict):
        return trace.get("name"), str(trace.get("arguments") or "{}"), str(trace.get("output") or "")
    if item.get("type") == "mcp_call" and isinstance(item.get("name"), str):
        output = item.get("output") if item.get("error") is None else f"error: {item['error']}"
        return item["name"], str(item.get("arguments") or "{}"), str(output or "")
    if item.get("type") == "file_search_call":
        arguments = orjson.dumps({"queries": item.get("queries") or []}).decode()
        return "file_search", arguments, orjson.dumps(item.get("results") or []).decode()
    return None, "", ""


def _tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tool_result(call_id: str, output: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A single text part as a plain string (every upstream takes it); otherwise chat content parts."""
    if len(parts) == 1 and "text" in parts[0]:
        return str(parts[0]["text"])
    converted: list[dict[str, Any]] = []
    for part in parts:
        if part["type"] == "input_image":
            converted.append({"type": "image_url", "image_url": {"url": part["image_url"], "detail": part["detail"]}})
        elif "text" in part:
            converted.append({"type": "text", "text": part["text"]})
    return converted

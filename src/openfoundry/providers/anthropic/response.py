"""Anthropic Messages -> OpenAI chat.completion answers, usage, and errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from openfoundry.errors import FoundryError
from openfoundry.providers.anthropic.request import JSON_TOOL
from openfoundry.providers.base import Usage
from openfoundry.providers.http import upstream_failure

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def response_body(message: dict[str, Any], *, created: int, json_tool: bool = False) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use" and json_tool and block.get("name") == JSON_TOOL:
            texts.append(orjson.dumps(block.get("input") or {}).decode())
        elif kind == "tool_use":
            function = {
                "name": block.get("name"),
                "arguments": orjson.dumps(block.get("input") or {}).decode(),
            }
            calls.append({"id": block.get("id"), "type": "function", "function": function})
    answer: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        answer["tool_calls"] = calls
    if reasoning:
        answer["reasoning_content"] = "".join(reasoning)
    finish = finish_reason(message.get("stop_reason"), called_tools=bool(calls))
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [{"index": 0, "message": answer, "finish_reason": finish, "logprobs": None}],
        "usage": openai_usage(usage_from(message.get("usage"))),
    }


def finish_reason(stop_reason: Any, *, called_tools: bool) -> str:
    if stop_reason == "tool_use" and not called_tools:
        return "stop"  # the JSON tool answered: to the client that is an ordinary answer
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def usage_from(raw: Any) -> Usage:
    """Anthropic's input_tokens leaves cache reads and writes out; OpenAI's prompt_tokens counts them."""
    raw = raw if isinstance(raw, dict) else {}
    cached = int(raw.get("cache_read_input_tokens") or 0)
    written = int(raw.get("cache_creation_input_tokens") or 0)
    details = raw.get("output_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("input_tokens") or 0) + cached + written,
        completion_tokens=int(raw.get("output_tokens") or 0),
        cached_tokens=cached,
        reasoning_tokens=int(details.get("thinking_tokens") or 0),
    )


def openai_usage(usage: Usage) -> dict[str, Any]:
    return usage.to_openai()


def translate_error(provider: str, status: int, data: bytes, headers: Mapping[str, str]) -> FoundryError:
    """Map an Anthropic error body {"type": "error", "error": {"type", "message"}} to a FoundryError."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("message"):
        message = str(error["message"])
    else:
        message = data[:500].decode(errors="replace").strip() or f"HTTP {status}"
    return upstream_failure(provider, status, message, headers)

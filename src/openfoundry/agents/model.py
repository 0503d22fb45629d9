"""One model step of a response: a Chat Completions call through the gateway (so it is limited,
routed and metered like any other), whole or streamed, read back into text, tool calls and usage."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from openfoundry.errors import FoundryError, UpstreamError, error_type_for_status
from openfoundry.gateway import Gateway
from openfoundry.providers.base import Usage
from openfoundry.tenancy.auth import Principal
from openfoundry.wire import sse


@dataclass(slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Step:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)


async def complete(gateway: Gateway, principal: Principal, body: dict[str, Any]) -> Step:
    outcome = await gateway.call(principal, "chat", body, orjson.dumps(body), time.perf_counter())
    payload = orjson.loads(outcome.body or b"{}")
    choice = (payload.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    calls = [
        ToolCall(call.get("id") or "", call["function"]["name"], call["function"].get("arguments") or "{}")
        for call in message.get("tool_calls") or []
    ]
    return Step(message.get("content") or "", calls, choice.get("finish_reason"), read_usage(payload.get("usage")))


async def stream(gateway: Gateway, principal: Principal, body: dict[str, Any], on_text: Callable[[str], None]) -> Step:
    """A streamed step; `on_text` gets each piece of text as it arrives."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    outcome = await gateway.call(principal, "chat", body, orjson.dumps(body), time.perf_counter())
    assert outcome.chunks is not None
    step, calls = Step(), _CallAssembler()
    try:
        async for event in sse.events(outcome.chunks):
            if event.data == b"[DONE]":
                break
            chunk = orjson.loads(event.data)
            if "error" in chunk:
                raise _stream_error(chunk["error"])
            if chunk.get("usage"):
                step.usage = read_usage(chunk["usage"])
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    step.text += delta["content"]
                    on_text(delta["content"])
                calls.add(delta.get("tool_calls") or [])
                step.finish_reason = choice.get("finish_reason") or step.finish_reason
    finally:
        await outcome.chunks.aclose()
    step.tool_calls = calls.finished()
    return step


def read_usage(raw: Any) -> Usage:
    """Usage from an OpenAI-shaped report; where completion_tokens leaves reasoning out (xAI), the
    total tells."""
    if not isinstance(raw, dict):
        return Usage()
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    completion = max(completion, int(raw.get("total_tokens") or 0) - prompt)
    cached = int((raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((raw.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return Usage(prompt, completion, cached, reasoning)


class _CallAssembler:
    """Tool calls put together from their streamed pieces (by index)."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, pieces: list[dict[str, Any]]) -> None:
        for piece in pieces:
            call = self._calls.setdefault(int(piece.get("index") or 0), {"id": "", "name": "", "arguments": ""})
            function = piece.get("function") or {}
            call["id"] = call["id"] or piece.get("id") or ""
            call["name"] += function.get("name") or ""
            call["arguments"] += function.get("arguments") or ""

    def finished(self) -> list[ToolCall]:
        return [
            ToolCall(call["id"], call["name"], call["arguments"] or "{}") for _, call in sorted(self._calls.items())
        ]


def _stream_error(error: Any) -> FoundryError:
    """The error event that ended an upstream stream, as the gateway wrote it."""
    fields = error if isinstance(error, dict) else {"message": str(error)}
    status = 429 if fields.get("type") == "rate_limit_error" else 502
    return UpstreamError(
        str(fields.get("message") or "the model stream failed"),
        status=status,
        type=fields.get("type") or error_type_for_status(status),
        code=fields.get("code"),
    )

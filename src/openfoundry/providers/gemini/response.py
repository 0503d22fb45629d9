"""Gemini GenerateContentResponse -> OpenAI chat.completion answers, usage, and errors."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from openfoundry.errors import FoundryError, InvalidRequest, UpstreamError
from openfoundry.providers.base import Usage
from openfoundry.providers.http import retry_after, upstream_failure

FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"}
)


def new_call_id() -> str:
    """Gemini's function calls carry no id the client can use: each gets a fresh OpenAI-style one."""
    return "call_" + secrets.token_hex(12)


def response_body(
    payload: dict[str, Any], model: str, *, created: int, call_id: Callable[[], str] = new_call_id
) -> dict[str, Any]:
    """One choice per candidate; a prompt Gemini blocked (no candidates) raises InvalidRequest."""
    candidates = payload.get("candidates") or []
    if not candidates:
        raise empty_answer(payload)
    return {
        "id": payload.get("responseId") or "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": created,
        "model": payload.get("modelVersion") or model,
        "choices": [_choice(candidate, position, call_id) for position, candidate in enumerate(candidates)],
        "usage": openai_usage(usage_from(payload.get("usageMetadata"))),
    }


def _choice(candidate: dict[str, Any], position: int, call_id: Callable[[], str]) -> dict[str, Any]:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if isinstance(part.get("functionCall"), dict):
            calls.append(tool_call(part, call_id))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    finish = finish_reason(candidate.get("finishReason"), called_tools=bool(calls))
    return {"index": candidate.get("index", position), "message": message, "finish_reason": finish, "logprobs": None}


def tool_call(part: dict[str, Any], call_id: Callable[[], str]) -> dict[str, Any]:
    """An OpenAI tool call for a functionCall part: Gemini sends each call whole, arguments as an object."""
    function = part["functionCall"]
    arguments = orjson.dumps(function.get("args") or {}).decode()
    call: dict[str, Any] = {
        "id": call_id(),
        "type": "function",
        "function": {"name": function.get("name"), "arguments": arguments},
    }
    if isinstance(part.get("thoughtSignature"), str):
        call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return call


def finish_reason(reason: Any, *, called_tools: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if called_tools else "stop"


def empty_answer(payload: dict[str, Any]) -> FoundryError:
    reason = (payload.get("promptFeedback") or {}).get("blockReason")
    if reason:
        return InvalidRequest(f"Gemini blocked the prompt (blockReason {reason})", code="content_filter")
    return UpstreamError("Gemini answered with no candidates")


def usage_from(raw: Any) -> Usage:
    """Gemini counts thoughts apart from candidates; OpenAI's completion_tokens includes them."""
    raw = raw if isinstance(raw, dict) else {}
    thoughts = int(raw.get("thoughtsTokenCount") or 0)
    return Usage(
        # Results of Gemini's built-in tools are read as prompt: toolUsePromptTokenCount is input.
        prompt_tokens=int(raw.get("promptTokenCount") or 0) + int(raw.get("toolUsePromptTokenCount") or 0),
        completion_tokens=int(raw.get("candidatesTokenCount") or 0) + thoughts,
        cached_tokens=int(raw.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def openai_usage(usage: Usage) -> dict[str, Any]:
    return usage.to_openai()


def translate_error(provider: str, status: int, data: bytes, headers: Mapping[str, str]) -> FoundryError:
    """Map a Gemini error body {"error": {"code", "message", "status", "details"}} to a FoundryError.

    A bad key is a 400 INVALID_ARGUMENT whose ErrorInfo reason is API_KEY_INVALID; the only thing
    Gemini serves under a model's URL is that model, so a 404 means the model is not there.
    """
    error = _error_object(data)
    message = str(error.get("message") or "") or data[:500].decode(errors="replace").strip() or f"HTTP {status}"
    details = [item for item in error.get("details") or [] if isinstance(item, dict)]
    code = {404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)
    return upstream_failure(
        provider,
        status,
        message,
        retry_after(headers) or _retry_delay(details),
        code=code,
        auth_refused=any(str(item.get("reason")).startswith("API_KEY_") for item in details),
    )


def _error_object(data: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(payload, list) and payload:  # streamGenerateContent without alt=sse wraps it in an array
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _retry_delay(details: list[dict[str, Any]]) -> dict[str, str]:
    """Gemini's 429s say when to retry only in a google.rpc.RetryInfo detail, e.g. "retryDelay": "38.5s"."""
    for item in details:
        delay = item.get("retryDelay")
        if str(item.get("@type", "")).endswith("google.rpc.RetryInfo") and isinstance(delay, str):
            try:
                return {"Retry-After": str(math.ceil(float(delay.removesuffix("s"))))}
            except ValueError:
                return {}
    return {}

"""The response object, as openai-python's `Response` type reads it."""

from __future__ import annotations

import time
from typing import Any

from openfoundry.agents.items import public_items
from openfoundry.agents.request import ResponseRequest
from openfoundry.errors import FoundryError
from openfoundry.providers.base import Usage

FINISHED = ("completed", "incomplete")


def new_response(request: ResponseRequest, response_id: str) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": request.background,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "model": request.model,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "conversation": {"id": request.conversation} if request.conversation else None,
        "reasoning": request.reasoning or {"effort": None, "summary": None},
        "store": request.store,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "text": request.text,
        "tool_choice": request.tool_choice,
        "tools": request.public_tools,
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": request.metadata,
    }


def public_response(response: dict[str, Any]) -> dict[str, Any]:
    """The response as clients see it: output items without the runner's traces."""
    return {**response, "output": public_items(response["output"])}


def finish(response: dict[str, Any], output: list[dict[str, Any]], usage: Usage, incomplete: bool) -> None:
    response["status"] = "incomplete" if incomplete else "completed"
    response["incomplete_details"] = {"reason": "max_output_tokens"} if incomplete else None
    response["completed_at"] = int(time.time())
    response["output"] = output
    response["usage"] = usage_object(usage)


def fail(response: dict[str, Any], output: list[dict[str, Any]], usage: Usage, exc: FoundryError) -> None:
    response["status"] = "failed"
    response["error"] = {"code": error_code(exc), "message": exc.message}
    response["output"] = output
    response["usage"] = usage_object(usage)


def error_code(exc: FoundryError) -> str:
    """The closest of the codes a Responses error has."""
    if exc.status == 429:
        return "rate_limit_exceeded"
    if exc.status >= 500:
        return "server_error"
    return exc.code or "invalid_prompt"


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def add_usage(total: Usage, step: Usage) -> None:
    total.prompt_tokens += step.prompt_tokens
    total.completion_tokens += step.completion_tokens
    total.cached_tokens += step.cached_tokens
    total.reasoning_tokens += step.reasoning_tokens

"""Light checks of canonical requests: enough to turn bad input into a clear 400, nothing more.

Upstreams validate the rest; these checks catch what would otherwise crash a translation or reach
an upstream as garbage. They run on the hot path, so they look only at top-level shapes.
"""

from __future__ import annotations

from typing import Any

import orjson

from openfoundry.errors import InvalidRequest

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_INTS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs", "dimensions")
_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"missing required parameter: '{param}'", param=param, code="missing_required_parameter")


def _mistyped(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' must be {expected}", param=param, code="invalid_type")


def _check_common(body: dict[str, Any]) -> None:
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _mistyped("stream", "a boolean")
    for name in _INTS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _mistyped(name, "an integer")
    for name in _NUMBERS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise _mistyped(name, "a number")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _mistyped("stream_options", "an object")


def check_chat(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not messages:
        raise _mistyped("messages", "a non-empty array of message objects")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _mistyped(f"messages[{index}]", "an object")
        role = message.get("role")
        if role not in _ROLES:
            raise InvalidRequest(
                f"messages[{index}].role must be one of {', '.join(sorted(_ROLES))}; got {role!r}",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _mistyped(f"messages[{index}].content", "a string or an array of content parts")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _mistyped("tools", "an array")
    _check_common(body)


def check_completion(body: dict[str, Any]) -> None:
    prompt = body.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if not isinstance(prompt, str | list):
        raise _mistyped("prompt", "a string or an array")
    _check_common(body)


def check_embedding(body: dict[str, Any]) -> None:
    value = body.get("input")
    if value is None:
        raise _missing("input")
    if not isinstance(value, str | list) or value == []:
        raise _mistyped("input", "a string or a non-empty array")
    _check_common(body)


def tool_arguments(arguments: Any, param: str) -> dict[str, Any]:
    """A tool call's arguments (a JSON string in OpenAI's format) as an object; 400 naming `param` if not one."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{param}: must be a JSON object", param=param, code="invalid_value")
    return value


CHECKS = {"chat": check_chat, "completions": check_completion, "embeddings": check_embedding}

"""OpenAI chat completions -> Anthropic Messages requests."""

from __future__ import annotations

from typing import Any

from openfoundry.errors import InvalidRequest
from openfoundry.wire.requests import tool_arguments

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires max_tokens; this is the cap when the client gives none."""
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}

# Anthropic has no response_format; its documented way to get JSON is a tool whose input_schema is the
# schema. We offer that tool (forced when it is the only one and thinking allows forcing) and hand its
# input back to the client as the message content, so the client sees an ordinary JSON answer.
JSON_TOOL = "json_response"

_TOOL_CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}


def request_body(body: dict[str, Any], model: str, *, stream: bool = False) -> dict[str, Any]:
    """The Anthropic Messages request for an OpenAI chat completions request; unknown fields are ignored."""
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("Anthropic models give one choice per request; 'n' must be 1", param="n")
    system, messages = _conversation(body.get("messages") or [])
    out: dict[str, Any] = {"model": model, "messages": messages, **_limits(body)}
    if system:
        out["system"] = system
    out.update(_tooling(body, thinking="thinking" in out))
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out


def _conversation(messages: list[Any]) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """(system, turns): system messages lifted out, tool results in user turns, same-role turns merged."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where, role = f"messages[{index}]", message.get("role")
        if role in ("system", "developer"):
            system.extend(_blocks(message.get("content"), where, images=False))
            continue
        if role == "user":
            blocks = _blocks(message.get("content"), where)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "tool":
            role, blocks = "user", [_tool_result(message, where)]
        else:
            raise InvalidRequest(f"{where}.role: {role!r} is not supported; use 'tool' messages", param=where)
        if turns and turns[-1]["role"] == role:  # Anthropic requires user and assistant to alternate
            turns[-1]["content"].extend(blocks)
        elif blocks:
            turns.append({"role": role, "content": blocks})
    # A plain string unless a block carries cache_control, which only the block form can hold.
    if any("cache_control" in block for block in system):
        return system, turns
    return "\n\n".join(block["text"] for block in system), turns


def _blocks(content: Any, where: str, *, images: bool = True) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for number, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not part.get("text"):
                continue
            block: dict[str, Any] = {"type": "text", "text": part["text"]}
        elif kind == "image_url" and images:
            block = {
                "type": "image",
                "source": _image_source(part.get("image_url"), f"{where}.content[{number}]"),
            }
        else:
            raise InvalidRequest(f"{where}.content[{number}]: part type {kind!r} is not supported here", param=where)
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _image_source(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest(f"{where}.image_url.url: required", param=f"{where}.image_url")
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    header, comma, data = url.partition(",")
    params = header[5:].split(";") if header.startswith("data:") else []
    if not comma or "base64" not in params[1:]:
        raise InvalidRequest(f"{where}.image_url.url: must be an http(s) URL or a base64 data: URL", param=where)
    return {"type": "base64", "media_type": params[0], "data": data}


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    # reasoning_content is dropped: Anthropic only takes back thinking blocks with their signature.
    blocks = _blocks(message.get("content"), where, images=False)
    for number, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        value = tool_arguments(function.get("arguments"), f"{where}.tool_calls[{number}].function.arguments")
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": value})
    return blocks


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(message.get("tool_call_id"), str):
        raise InvalidRequest(f"{where}.tool_call_id: required", param=f"{where}.tool_call_id")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            result["content"] = content
    elif content:
        result["content"] = _blocks(content, where)
    return result


def _limits(body: dict[str, Any]) -> dict[str, Any]:
    """max_tokens (required by Anthropic) and the thinking budget that reasoning_effort asks for."""
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    max_tokens = requested if isinstance(requested, int) and requested > 0 else DEFAULT_MAX_TOKENS
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return {"max_tokens": max_tokens}
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        expected = ", ".join(["none", *THINKING_BUDGETS])
        raise InvalidRequest(f"reasoning_effort must be one of {expected}", param="reasoning_effort")
    if max_tokens <= budget:  # the budget is part of max_tokens: keep what the client asked for the answer
        max_tokens += budget
    return {"max_tokens": max_tokens, "thinking": {"type": "enabled", "budget_tokens": budget}}


def _tooling(body: dict[str, Any], *, thinking: bool) -> dict[str, Any]:
    tools = [_tool(tool, number) for number, tool in enumerate(body.get("tools") or [])]
    json_tool = _json_tool(body.get("response_format"))
    if json_tool is not None:
        tools.append(json_tool)
    if not tools:
        return {}
    choice = _tool_choice(body.get("tool_choice"))
    if choice is None and len(tools) == 1 and json_tool is not None and not thinking:
        choice = {"type": "tool", "name": JSON_TOOL}  # thinking forbids forcing a tool: then it is offered
    if body.get("parallel_tool_calls") is False and (choice is None or choice["type"] != "none"):
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    return {"tools": tools, "tool_choice": choice} if choice else {"tools": tools}


def _tool(tool: Any, number: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict):
        raise InvalidRequest(f"tools[{number}]: only function tools are supported", param=f"tools[{number}]")
    out = {"name": function.get("name"), "input_schema": function.get("parameters") or {"type": "object"}}
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return dict(_TOOL_CHOICES[choice])
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return {"type": "tool", "name": name}
    raise InvalidRequest("tool_choice must be auto, none, required or a function", param="tool_choice")


def _json_tool(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema, about = spec.get("schema") or {"type": "object"}, spec.get("description")
    elif kind == "json_object":
        schema, about = {"type": "object"}, None
    else:
        return None
    description = "Give your answer by calling this tool: its input is the answer."
    return {
        "name": JSON_TOOL,
        "description": f"{description} {about}" if about else description,
        "input_schema": schema,
    }


def uses_json_tool(body: dict[str, Any]) -> bool:
    return _json_tool(body.get("response_format")) is not None

"""`POST /v1/responses` bodies: checked once into a typed request; unknown fields are ignored.

One extension to OpenAI's fields: `stop` (a string or up to 4), as in Chat Completions, so a base
model without a turn end (the embedded Gemma) can finish a response instead of running out of tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openfoundry.agents.items import input_items, invalid
from openfoundry.errors import InvalidRequest

MIN_OUTPUT_TOKENS = 16
_CHOICES = ("none", "auto", "required")
_SECRET_TOOL_FIELDS = ("headers", "authorization")


@dataclass(slots=True)
class ResponseRequest:
    model: str
    input: list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    max_tool_calls: int | None = None
    previous_response_id: str | None = None
    conversation: str | None = None
    store: bool = True
    stream: bool = False
    background: bool = False
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: dict[str, Any] | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)

    @property
    def public_tools(self) -> list[dict[str, Any]]:
        """The tools as the response object shows them: never the MCP headers or tokens."""
        return [{k: v for k, v in tool.items() if k not in _SECRET_TOOL_FIELDS} for tool in self.tools]


def parse_request(body: dict[str, Any]) -> ResponseRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("missing required parameter: 'model'", param="model", code="missing_required_parameter")
    request = ResponseRequest(model=model, input=_input(body))
    request.instructions = _optional(body, "instructions", str, "a string")
    request.tools = _tools(body.get("tools"))
    request.tool_choice = _tool_choice(body.get("tool_choice"))
    request.parallel_tool_calls = _flag(body, "parallel_tool_calls", True)
    request.max_tool_calls = _positive(body, "max_tool_calls", 1)
    request.previous_response_id = _optional(body, "previous_response_id", str, "a string")
    request.conversation = _conversation(body.get("conversation"))
    if request.previous_response_id and request.conversation:
        raise InvalidRequest("'previous_response_id' and 'conversation' cannot be used together", param="conversation")
    request.store = _flag(body, "store", True)
    request.stream = _flag(body, "stream", False)
    request.background = _flag(body, "background", False)
    if request.background and not request.store:
        raise InvalidRequest("background responses must be stored; do not set 'store' to false", param="store")
    if request.background and request.stream:
        raise InvalidRequest(
            "background responses are not streamed here; poll GET /v1/responses/{id} instead", param="stream"
        )
    request.text = _text(body.get("text"))
    request.reasoning = _optional(body, "reasoning", dict, "an object")
    request.max_output_tokens = _positive(body, "max_output_tokens", MIN_OUTPUT_TOKENS)
    request.metadata = check_metadata(body.get("metadata"))
    request.temperature = _number(body, "temperature")
    request.top_p = _number(body, "top_p")
    request.stop = _stop(body.get("stop"))
    return request


def _input(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body.get("input")
    if value is None:
        if body.get("previous_response_id") or body.get("conversation"):
            return []
        raise InvalidRequest("missing required parameter: 'input'", param="input", code="missing_required_parameter")
    return input_items(value)


def _mistyped(name: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"'{name}' must be {expected}", param=name, code="invalid_type")


def _optional(body: dict[str, Any], name: str, kind: type, expected: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise _mistyped(name, expected)
    return value


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _mistyped(name, "a boolean")
    return value


def _positive(body: dict[str, Any], name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _mistyped(name, "an integer")
    if value < minimum:
        raise InvalidRequest(f"'{name}' must be at least {minimum}; got {value}", param=name, code="invalid_value")
    return value


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise _mistyped(name, "a number")
    return value


def _stop(value: Any) -> list[str]:
    stops = [value] if isinstance(value, str) else value
    if stops is None:
        return []
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(stop, str) and stop for stop in stops):
        raise invalid("'stop' must be a string or an array of up to 4 strings", "stop")
    return stops


def _conversation(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
        if not isinstance(value, str):
            raise _mistyped("conversation.id", "a string")
    if value is not None and not isinstance(value, str):
        raise _mistyped("conversation", "a conversation id or an object with its 'id'")
    return value


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _mistyped("tools", "an array of tool objects")
    for index, tool in enumerate(value):
        param = f"tools[{index}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise InvalidRequest(f"'{param}' must be an object with a 'type'", param=param, code="invalid_type")
        if tool["type"] == "function":
            _check_function(tool, param)
    return value


def _check_function(tool: dict[str, Any], param: str) -> None:
    name = tool.get("name")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise invalid(f"'{param}.name' must be a function name of 1 to 64 characters", f"{param}.name")
    if tool.get("parameters") is not None and not isinstance(tool["parameters"], dict):
        raise InvalidRequest(
            f"'{param}.parameters' must be a JSON Schema object", param=f"{param}.parameters", code="invalid_type"
        )
    if tool.get("description") is not None and not isinstance(tool["description"], str):
        raise _mistyped(f"{param}.description", "a string")


def _tool_choice(value: Any) -> Any:
    if value is None:
        return "auto"
    if isinstance(value, str):
        if value not in _CHOICES:
            raise invalid(f"'tool_choice' must be one of {', '.join(_CHOICES)} or a tool object", "tool_choice")
        return value
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise _mistyped("tool_choice", "a string or an object with a 'type'")
    if value["type"] == "function" and not isinstance(value.get("name"), str):
        raise _mistyped("tool_choice.name", "a string")
    return value


def _text(value: Any) -> dict[str, Any]:
    if value is None:
        return {"format": {"type": "text"}}
    if not isinstance(value, dict):
        raise _mistyped("text", "an object")
    fmt = value.get("format") or {"type": "text"}
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_schema", "json_object"):
        raise invalid("'text.format.type' must be text, json_schema or json_object", "text.format.type")
    if fmt["type"] == "json_schema":
        if not isinstance(fmt.get("name"), str) or not fmt["name"]:
            raise invalid("'text.format.name' is required for a json_schema format", "text.format.name")
        if not isinstance(fmt.get("schema"), dict):
            raise invalid("'text.format.schema' must be a JSON Schema object", "text.format.schema")
    return {**value, "format": fmt}


def check_metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 16:
        raise invalid("'metadata' must be an object of at most 16 string pairs", "metadata")
    for key, item in value.items():
        if len(key) > 64 or not isinstance(item, str) or len(item) > 512:
            raise invalid(
                "'metadata' keys must be strings of at most 64 characters and values strings of at most 512",
                "metadata",
            )
    return value

"""Responses API items: ids, the input items a client may send (checked and normalised), and the
output items the runner makes.

Items are plain dicts in OpenAI's shape. An output item of a server-side tool call also carries a
private `_trace` (the function name, arguments and output the model saw) so the call can be replayed
to the model in later turns; `public()` removes it wherever an item leaves the server.
"""

from __future__ import annotations

import secrets
from typing import Any

from openfoundry.errors import InvalidRequest

TRACE = "_trace"
MAX_ID_LENGTH = 128
ECHOED_TYPES = frozenset(
    {"reasoning", "mcp_call", "mcp_list_tools", "mcp_approval_request", "file_search_call", "openapi_call"}
)
"""Output item types a client may send back as input (the Agents SDK replays whole histories)."""
_ROLES = ("user", "assistant", "system", "developer")


def new_id(prefix: str) -> str:
    """An id like OpenAI's: `resp_…`, `msg_…`, `fc_…`, `conv_…`."""
    return f"{prefix}_{secrets.token_hex(24)}"


def public(item: dict[str, Any]) -> dict[str, Any]:
    """The item as clients see it: without the runner's private trace."""
    if TRACE not in item:
        return item
    return {key: value for key, value in item.items() if key != TRACE}


def public_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [public(item) for item in items]


def invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_value")


def input_items(value: Any, param: str = "input") -> list[dict[str, Any]]:
    """A request's `input` (a string, or a list of items) as normalised items with ids."""
    if isinstance(value, str):
        return [_message({"role": "user", "content": value}, param)]
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be a string or an array of items", param=param, code="invalid_type")
    return [normalise(entry, f"{param}[{index}]") for index, entry in enumerate(value)]


def normalise(entry: Any, param: str) -> dict[str, Any]:
    """One input item, checked, with its defaults (id, status) filled in."""
    if not isinstance(entry, dict):
        raise InvalidRequest(f"'{param}' must be an object", param=param, code="invalid_type")
    kind = entry.get("type", "message" if "role" in entry else None)
    if kind == "message":
        return _message(entry, param)
    if kind == "function_call":
        return _function_call(entry, param)
    if kind == "function_call_output":
        return _function_call_output(entry, param)
    if kind == "mcp_approval_response":
        return _approval_response(entry, param)
    if kind == "item_reference":
        return {"type": "item_reference", "id": _required_id(entry, param)}
    if kind in ECHOED_TYPES:
        return {**public(entry), "id": _required_id(entry, param)}
    supported = ", ".join(["message", "function_call", "function_call_output", "mcp_approval_response"])
    raise invalid(
        f"unsupported item type {kind!r} in '{param}'; supported: {supported} (and echoed output items)", param
    )


def message_item(text: str, annotations: list[dict[str, Any]], status: str, item_id: str) -> dict[str, Any]:
    """An assistant output message with one output_text part."""
    part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": [part]}


def function_call_item(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": new_id("fc"),
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def text_of(content: Any) -> str:
    """The text of a message's or tool output's content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    texts = [part.get("text") for part in content or [] if isinstance(part, dict)]
    return "".join(text for text in texts if isinstance(text, str))


def _string(entry: dict[str, Any], key: str, param: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"'{param}.{key}' must be a string", param=f"{param}.{key}", code="invalid_type")
    return value


def _item_id(entry: dict[str, Any], prefix: str, param: str) -> str:
    if entry.get("id") is None:
        return new_id(prefix)
    return _required_id(entry, param)


def _required_id(entry: dict[str, Any], param: str) -> str:
    value = entry.get("id")
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise invalid(f"'{param}.id' must be a string of 1 to {MAX_ID_LENGTH} characters", f"{param}.id")
    return value


def _message(entry: dict[str, Any], param: str) -> dict[str, Any]:
    role = entry.get("role")
    if role not in _ROLES:
        raise invalid(f"'{param}.role' must be one of {', '.join(_ROLES)}; got {role!r}", f"{param}.role")
    content = entry.get("content")
    if isinstance(content, str):
        parts = [_text_part(role, content)]
    elif isinstance(content, list):
        parts = [_part(part, role, f"{param}.content[{index}]") for index, part in enumerate(content)]
    else:
        raise InvalidRequest(
            f"'{param}.content' must be a string or an array of content parts",
            param=f"{param}.content",
            code="invalid_type",
        )
    status = entry.get("status") or "completed"
    return {"id": _item_id(entry, "msg", param), "type": "message", "role": role, "status": status, "content": parts}


def _text_part(role: str, text: str) -> dict[str, Any]:
    if role == "assistant":
        return {"type": "output_text", "text": text, "annotations": []}
    return {"type": "input_text", "text": text}


def _part(part: Any, role: str, param: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise InvalidRequest(f"'{param}' must be an object", param=param, code="invalid_type")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {**_text_part(role, _string(part, "text", param)), **_annotations(part)}
    if kind == "refusal":
        return {"type": "refusal", "refusal": _string(part, "refusal", param)}
    if kind == "input_image":
        if not isinstance(part.get("image_url"), str):
            raise invalid(f"'{param}.image_url' must be a URL or a data: URL (file_id images are not supported)", param)
        return {"type": "input_image", "image_url": part["image_url"], "detail": part.get("detail") or "auto"}
    raise invalid(f"unsupported content part type {kind!r} in '{param}'; use input_text or input_image", param)


def _annotations(part: dict[str, Any]) -> dict[str, Any]:
    annotations = part.get("annotations")
    return {"annotations": annotations} if isinstance(annotations, list) else {}


def _function_call(entry: dict[str, Any], param: str) -> dict[str, Any]:
    return {
        "id": _item_id(entry, "fc", param),
        "type": "function_call",
        "status": entry.get("status") or "completed",
        "call_id": _string(entry, "call_id", param),
        "name": _string(entry, "name", param),
        "arguments": _string(entry, "arguments", param),
    }


def _function_call_output(entry: dict[str, Any], param: str) -> dict[str, Any]:
    output = entry.get("output")
    if not isinstance(output, str | list):
        raise InvalidRequest(
            f"'{param}.output' must be a string or an array of content parts",
            param=f"{param}.output",
            code="invalid_type",
        )
    return {
        "id": _item_id(entry, "fco", param),
        "type": "function_call_output",
        "status": entry.get("status") or "completed",
        "call_id": _string(entry, "call_id", param),
        "output": output,
    }


def _approval_response(entry: dict[str, Any], param: str) -> dict[str, Any]:
    if not isinstance(entry.get("approve"), bool):
        raise InvalidRequest(f"'{param}.approve' must be a boolean", param=f"{param}.approve", code="invalid_type")
    reason = entry.get("reason")
    return {
        "id": _item_id(entry, "mcpa", param),
        "type": "mcp_approval_response",
        "approval_request_id": _string(entry, "approval_request_id", param),
        "approve": entry["approve"],
        "reason": reason if isinstance(reason, str) else None,
    }

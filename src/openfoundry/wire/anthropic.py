"""Anthropic Messages as clients speak it, to canonical OpenAI chat completions and back.

The mirror of providers/anthropic/: there a canonical request becomes Anthropic's for an Anthropic
host; here an Anthropic client's request becomes canonical for any deployment, and the canonical answer,
whole or streamed, becomes an Anthropic message or event sequence. Wire format from Anthropic's API
reference (Messages, streaming Messages, errors, extended thinking). Everything here is pure.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from openfoundry.errors import InvalidRequest
from openfoundry.wire import sse

EFFORTS = ((4096, "low"), (16384, "medium"))
"""A thinking budget below a bound asks for that reasoning_effort; larger ones for "high".
The bounds invert providers/anthropic/request.py's budgets (low 1024, medium 4096, high 16384)."""
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_SHARED_ERROR_TYPES = frozenset(
    {"invalid_request_error", "authentication_error", "permission_error", "rate_limit_error", "timeout_error"}
)
"""Error types OpenAI's and Anthropic's shapes both use."""
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_SAMPLING = ("temperature", "top_p")
_EFFORTS = {"low": "low", "medium": "medium"}
"""output_config.effort -> reasoning_effort; high, xhigh and max are all "high"."""


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """Anthropic's error `type` for an HTTP status (other 4xx are invalid requests, other 5xx api errors)."""
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


# -- request: Anthropic Messages -> OpenAI chat completions


def openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """The canonical request for an Anthropic Messages request; fields with no canonical meaning are dropped."""
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise InvalidRequest(f"{name}: Field required", param=name)
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be a positive integer", param="max_tokens")
    turns = body["messages"]
    if not isinstance(turns, list) or not turns:
        raise InvalidRequest("messages: Input should be a non-empty list", param="messages")
    messages = _system(body.get("system"))
    for index, turn in enumerate(turns):
        messages.extend(_turn(turn, f"messages.{index}"))
    out: dict[str, Any] = {"model": body["model"], "messages": messages, "max_tokens": max_tokens}
    return out | _tooling(body) | _options(body)


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """Sampling, stop sequences, reasoning, structured output, the end user, and streaming."""
    out = {key: body[key] for key in _SAMPLING if body.get(key) is not None}
    stops = body.get("stop_sequences")
    if stops and (not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops)):
        raise InvalidRequest("stop_sequences: Input should be a list of strings", param="stop_sequences")
    if stops:
        out["stop"] = stops
    output = body["output_config"] if isinstance(body.get("output_config"), dict) else {}
    effort = _reasoning_effort(body.get("thinking"), output.get("effort"))
    if effort is not None:
        out["reasoning_effort"] = effort
    schema = (output.get("format") or body.get("output_format") or {}).get("schema")
    if isinstance(schema, dict):
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    user = body["metadata"].get("user_id") if isinstance(body.get("metadata"), dict) else None
    if isinstance(user, str):
        out["user"] = user
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "" or system == []:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise InvalidRequest("system: Input should be a string or a list of text blocks", param="system")
    texts = [_part(block, f"system.{n}", images=False)["text"] for n, block in enumerate(system)]
    return [{"role": "system", "content": "\n\n".join(texts)}]


def _turn(turn: Any, where: str) -> list[dict[str, Any]]:
    role = turn.get("role") if isinstance(turn, dict) else None
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"{where}.role: Input should be 'user' or 'assistant'", param=f"{where}.role")
    content = turn.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content: Input should be a string or a list of blocks", param=where)
    blocks = [(block, f"{where}.content.{n}") for n, block in enumerate(content)]
    return [_assistant(blocks)] if role == "assistant" else _user(blocks)


def _user(blocks: list[tuple[Any, str]]) -> list[dict[str, Any]]:
    """Tool results become `tool` messages, first as Anthropic requires; the rest one user message after."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block, where in blocks:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            if not isinstance(block.get("tool_use_id"), str):
                raise InvalidRequest(f"{where}.tool_use_id: Field required", param=f"{where}.tool_use_id")
            text, images = _tool_result(block, where)
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
            parts.extend(images)  # tool messages hold only text: the images follow as the user's
        else:
            parts.append(_part(block, where))
    if parts:  # one text part as a plain string, which every OpenAI-compatible server reads
        text_only = len(parts) == 1 and parts[0]["type"] == "text"
        results.append({"role": "user", "content": parts[0]["text"] if text_only else parts})
    return results


def _assistant(blocks: list[tuple[Any, str]]) -> dict[str, Any]:
    # thinking blocks are dropped: their signatures mean nothing to other hosts, and the canonical
    # format has no way to send reasoning back.
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block, where in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(_part(block, where, images=False)["text"])
        elif kind == "tool_use":
            function = {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind not in ("thinking", "redacted_thinking"):
            raise _unsupported(kind, where)
    message: dict[str, Any] = {"role": "assistant", "content": "\n\n".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_result(block: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    content = block.get("content")
    if content is None or isinstance(content, str):
        parts = [{"type": "text", "text": content or ""}]
    elif isinstance(content, list):
        parts = [_part(inner, f"{where}.content.{n}") for n, inner in enumerate(content)]
    else:
        raise InvalidRequest(f"{where}.content: Input should be a string or a list of blocks", param=where)
    text = "\n".join(part["text"] for part in parts if part["type"] == "text")
    if block.get("is_error"):
        text = f"Error: {text}"  # the canonical format cannot mark a tool result as failed otherwise
    return text, [part for part in parts if part["type"] != "text"]


def _part(block: Any, where: str, *, images: bool = True) -> dict[str, Any]:
    """A text or image block as an OpenAI content part; cache_control and citations are dropped."""
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text" and isinstance(block.get("text"), str):
        return {"type": "text", "text": block["text"]}
    if kind == "image" and images:
        source = block.get("source") or {}
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            url = f"data:{source.get('media_type')};base64,{source['data']}"
        elif source.get("type") == "url" and isinstance(source.get("url"), str):
            url = source["url"]
        else:
            raise InvalidRequest(f"{where}.source: only base64 and url image sources are supported", param=where)
        return {"type": "image_url", "image_url": {"url": url}}
    raise _unsupported(kind, where)


def _unsupported(kind: Any, where: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: content blocks of type {kind!r} are not supported here", param=where)


def _tooling(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(tool, f"tools.{n}") for n, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return out
    kind = choice.get("type")
    if kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind in _TOOL_CHOICES:
        out["tool_choice"] = _TOOL_CHOICES[kind]
    else:
        raise InvalidRequest("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'", param="tool_choice")
    if choice.get("disable_parallel_tool_use") and kind != "none":
        out["parallel_tool_calls"] = False
    return out


def _tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom" or not isinstance(tool.get("name"), str):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise InvalidRequest(f"{where}: only custom tools are supported here, not {kind!r}", param=where)
    function = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _reasoning_effort(thinking: Any, effort: Any) -> str | None:
    """A thinking budget picks the effort; otherwise output_config.effort; adaptive thinking alone is medium."""
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return None
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if kind == "enabled" and isinstance(budget, int):
        return next((level for bound, level in EFFORTS if budget < bound), "high")
    if isinstance(effort, str):
        return _EFFORTS.get(effort, "high")
    return None if kind is None else "medium"


# -- response: OpenAI chat.completion -> Anthropic message


def anthropic_message(completion: dict[str, Any], *, stop_sequences: list[str]) -> dict[str, Any]:
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    answer = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if answer.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": answer["reasoning_content"], "signature": ""})
    text = answer.get("content") or answer.get("refusal")  # OpenAI states a refusal apart from content
    if text:
        content.append({"type": "text", "text": text})
    for call in answer.get("tool_calls") or []:
        function = call.get("function") or {}
        block = {"type": "tool_use", "id": call.get("id"), "name": function.get("name")}
        content.append(block | {"input": tool_input(function.get("arguments"))})
    stop_reason, stop_sequence = ("refusal", None) if answer.get("refusal") else stop(choice, stop_sequences)
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": anthropic_usage(completion.get("usage")),
    }


def message_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return f"msg_{uuid.uuid4().hex[:24]}"
    return value if value.startswith("msg_") else f"msg_{value}"


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments (a JSON string) as the object Anthropic clients expect; {} if not an object."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str | bytes) and arguments else {}
    except orjson.JSONDecodeError:
        value = {}
    return value if isinstance(value, dict) else {}


def stop(choice: dict[str, Any], stop_sequences: list[str]) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence). The canonical format cannot tell a stop sequence from a natural end;
    only hosts that name the matched string (vLLM and SGLang put it in the choice's `stop_reason`) can."""
    matched = choice.get("stop_reason")
    if choice.get("finish_reason") == "stop" and isinstance(matched, str) and matched in stop_sequences:
        return "stop_sequence", matched
    return STOP_REASONS.get(str(choice.get("finish_reason")), "end_turn"), None


def anthropic_usage(raw: Any) -> dict[str, int]:
    """Anthropic's input_tokens leave cache reads out; OpenAI's prompt_tokens count them."""
    raw = raw if isinstance(raw, dict) else {}
    cached = int((raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {
        "input_tokens": max(int(raw.get("prompt_tokens") or 0) - cached, 0),
        "output_tokens": int(raw.get("completion_tokens") or 0),
        "cache_read_input_tokens": cached,
    }


# -- stream: OpenAI chat.completion.chunk events -> Anthropic stream events


class EventStream:
    """Feed the data of each OpenAI SSE event in order; get SSE bytes of Anthropic events back.

    Anthropic's sequence: message_start; per content block (thinking, text, each tool_use) a
    content_block_start, its deltas and a content_block_stop; message_delta with the stop reason and
    usage; message_stop. OpenAI reports usage last, so message_start carries zeros and message_delta
    the counts. `done` turns true after message_stop or an error event.
    """

    def __init__(self, *, stop_sequences: list[str]) -> None:
        self.stop_sequences = stop_sequences
        self.done = False
        self._started = False
        self._open: str | None = None  # the kind of the block now open: thinking, text or tool_use
        self._index = -1
        self._tools: dict[Any, int] = {}  # OpenAI tool call index -> its tool_use block's index
        self._stop: tuple[str, str | None] = ("end_turn", None)
        self._refused = False
        self._usage = anthropic_usage(None)

    def feed_data(self, data: bytes) -> list[bytes]:
        if self.done:
            return []
        if data == b"[DONE]":
            return self._finish()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self.fail("api_error", "the upstream sent a malformed stream event")
        if not isinstance(chunk, dict):
            return []
        error = chunk.get("error")
        if "choices" not in chunk and isinstance(error, dict):
            return self.fail(_stream_error_type(error), str(error.get("message") or "upstream error"))
        return self.feed(chunk)

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        out = self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = anthropic_usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                out += self._delta("thinking", {"type": "thinking_delta", "thinking": delta["reasoning_content"]})
            text = delta.get("content") or delta.get("refusal")
            if text:
                out += self._delta("text", {"type": "text_delta", "text": text})
            self._refused = self._refused or bool(delta.get("refusal"))
            for call in delta.get("tool_calls") or []:
                out += self._tool_call(call)
            if choice.get("finish_reason"):
                self._stop = stop(choice, self.stop_sequences)
        return out

    def end(self) -> list[bytes]:
        """What to send when the stream closed: an error unless [DONE] or an error came first."""
        return [] if self.done else self.fail("api_error", "the upstream ended the stream before it was complete")

    def fail(self, kind: str, message: str) -> list[bytes]:
        self.done = True
        return [_event(error_body(kind, message))]

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        message = anthropic_message({"id": chunk.get("id"), "model": chunk.get("model")}, stop_sequences=[])
        message.update(stop_reason=None, stop_sequence=None, usage={"input_tokens": 0, "output_tokens": 0})
        return [_event({"type": "message_start", "message": message})]

    def _delta(self, kind: str, delta: dict[str, Any]) -> list[bytes]:
        out = []
        if self._open != kind:
            empty = {"thinking": {"thinking": "", "signature": ""}, "text": {"text": ""}}[kind]
            out = self._begin(kind, {"type": kind, **empty})
        return [*out, _event({"type": "content_block_delta", "index": self._index, "delta": delta})]

    def _tool_call(self, call: Any) -> list[bytes]:
        if not isinstance(call, dict):
            return []
        out = []
        number = call.get("index", 0)
        function = call.get("function") or {}
        if number not in self._tools:
            block: dict[str, Any] = {"type": "tool_use", "id": call.get("id"), "name": function.get("name")}
            out = self._begin("tool_use", block | {"input": {}})
            self._tools[number] = self._index
        fragment = function.get("arguments")
        if fragment:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            out.append(_event({"type": "content_block_delta", "index": self._tools[number], "delta": delta}))
        return out

    def _begin(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._open, self._index = kind, self._index + 1
        return [*out, _event({"type": "content_block_start", "index": self._index, "content_block": block})]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        self._open = None
        return [_event({"type": "content_block_stop", "index": self._index})]

    def _finish(self) -> list[bytes]:
        out = self._start({}) + self._close()
        stop_reason, stop_sequence = ("refusal", None) if self._refused else self._stop
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        out.append(_event({"type": "message_delta", "delta": delta, "usage": self._usage}))
        out.append(_event({"type": "message_stop"}))
        self.done = True
        return out


def _event(payload: dict[str, Any]) -> bytes:
    return sse.encode(orjson.dumps(payload), payload["type"])


def _stream_error_type(error: dict[str, Any]) -> str:
    """The Anthropic type for an OpenAI-shaped error event (which carries a type, not a status)."""
    if error.get("code") == "deployment_unavailable":
        return "overloaded_error"
    return str(error["type"]) if error.get("type") in _SHARED_ERROR_TYPES else "api_error"

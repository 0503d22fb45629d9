"""xAI's gRPC chat messages (the generated classes `xai-sdk` ships) to canonical chat completions and back.

Requests become OpenAI bodies; OpenAI answers become `GetChatCompletionResponse`, and OpenAI stream
chunks become `GetChatCompletionChunk`s the way xAI sends them: every delta carries the assistant role,
a tool call arrives whole in one chunk, usage is cumulative (the last chunk holds the total) and the
citations come once, on the last chunk. Usage keeps OpenAI's meaning: `completion_tokens` includes the
reasoning tokens, which are also reported on their own.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from xai_sdk.proto import chat_pb2, image_pb2, sample_pb2, usage_pb2

from openfoundry.errors import InvalidRequest

Proto = Any
"""A generated protobuf message (xai-sdk ships no type information for them)."""

_ROLES = {
    chat_pb2.ROLE_USER: "user",
    chat_pb2.ROLE_ASSISTANT: "assistant",
    chat_pb2.ROLE_SYSTEM: "system",
    chat_pb2.ROLE_DEVELOPER: "developer",
    chat_pb2.ROLE_TOOL: "tool",
    chat_pb2.ROLE_FUNCTION: "tool",
}
_EFFORTS = {
    chat_pb2.EFFORT_LOW: "low",
    chat_pb2.EFFORT_MEDIUM: "medium",
    chat_pb2.EFFORT_HIGH: "high",
    chat_pb2.EFFORT_NONE: "none",
    chat_pb2.EFFORT_XHIGH: "xhigh",
}
_TOOL_MODES = {
    chat_pb2.TOOL_MODE_AUTO: "auto",
    chat_pb2.TOOL_MODE_NONE: "none",
    chat_pb2.TOOL_MODE_REQUIRED: "required",
}
_DETAILS = {image_pb2.DETAIL_AUTO: "auto", image_pb2.DETAIL_LOW: "low", image_pb2.DETAIL_HIGH: "high"}
_FINISH = {
    "stop": sample_pb2.REASON_STOP,
    "length": sample_pb2.REASON_MAX_LEN,
    "tool_calls": sample_pb2.REASON_TOOL_CALLS,
    "function_call": sample_pb2.REASON_TOOL_CALLS,
    "content_filter": sample_pb2.REASON_STOP,
}
# Optional scalar fields copied as they are when the client set them.
_SCALARS = ("max_tokens", "seed", "temperature", "top_p", "frequency_penalty", "presence_penalty", "top_logprobs")


def openai_request(request: Proto) -> dict[str, Any]:
    """A canonical chat completions body from a `GetCompletionsRequest`."""
    body: dict[str, Any] = {"model": request.model, "messages": _messages(request.messages)}
    body |= {name: getattr(request, name) for name in _SCALARS if request.HasField(name)}
    if request.stop:
        body["stop"] = list(request.stop)
    if request.logprobs:
        body["logprobs"] = True
    if request.user:
        body["user"] = request.user
    if request.HasField("n") and request.n > 1:
        body["n"] = request.n
    if request.HasField("parallel_tool_calls"):
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
    if request.HasField("tool_choice"):
        body["tool_choice"] = _tool_choice(request.tool_choice)
    if request.HasField("response_format"):
        body["response_format"] = _response_format(request.response_format)
    if request.HasField("reasoning_effort") and request.reasoning_effort in _EFFORTS:
        body["reasoning_effort"] = _EFFORTS[request.reasoning_effort]
    if request.HasField("search_parameters") and request.search_parameters.mode != chat_pb2.OFF_SEARCH_MODE:
        raise InvalidRequest("search_parameters (Live Search) is not supported here", param="search_parameters")
    if request.HasField("previous_response_id"):
        raise InvalidRequest("stored conversations (previous_response_id) are not supported here")
    return body


def _messages(messages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    unanswered: list[str] = []  # tool call ids of the last assistant turn, for results that name none
    for index, message in enumerate(messages):
        role = _ROLES.get(message.role)
        if role is None:
            raise InvalidRequest(f"messages[{index}].role is not set", param=f"messages[{index}].role")
        entry: dict[str, Any] = {"role": role, "content": _content(message.content, index)}
        if message.name:
            entry["name"] = message.name
        if role == "assistant" and message.tool_calls:
            entry["tool_calls"] = [_openai_tool_call(call) for call in message.tool_calls]
            unanswered = [call["id"] for call in entry["tool_calls"]]
            if not entry["content"]:
                entry["content"] = None
        if role == "tool":
            entry["tool_call_id"] = message.tool_call_id or (unanswered.pop(0) if unanswered else "")
            if message.tool_call_id in unanswered:
                unanswered.remove(message.tool_call_id)
        out.append(entry)
    return out


def _content(parts: Any, index: int) -> str | list[dict[str, Any]]:
    """Text-only content as one string (what every provider takes); with images, OpenAI content parts."""
    if all(part.WhichOneof("content") == "text" for part in parts):
        return "".join(part.text for part in parts)
    out: list[dict[str, Any]] = []
    for part in parts:
        kind = part.WhichOneof("content")
        if kind == "text":
            out.append({"type": "text", "text": part.text})
        elif kind == "image_url" and part.image_url.image_url:
            image: dict[str, Any] = {"url": part.image_url.image_url}
            if part.image_url.detail in _DETAILS:
                image["detail"] = _DETAILS[part.image_url.detail]
            out.append({"type": "image_url", "image_url": image})
        else:
            raise InvalidRequest(
                f"messages[{index}]: only text and image URL content is supported here (got {kind or 'nothing'})",
                param=f"messages[{index}].content",
            )
    return out


def _openai_tool_call(call: Proto) -> dict[str, Any]:
    function = {"name": call.function.name, "arguments": call.function.arguments or "{}"}
    return {"id": call.id, "type": "function", "function": function}


def _tool(tool: Proto) -> dict[str, Any]:
    kind = tool.WhichOneof("tool")
    if kind != "function":
        raise InvalidRequest(f"server-side tool '{kind}' is not supported here; only function tools are", param="tools")
    function: dict[str, Any] = {"name": tool.function.name}
    if tool.function.description:
        function["description"] = tool.function.description
    function["parameters"] = _json(tool.function.parameters, "tools.function.parameters") or {"type": "object"}
    if tool.function.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def _tool_choice(choice: Proto) -> Any:
    if choice.WhichOneof("tool_choice") == "function_name":
        return {"type": "function", "function": {"name": choice.function_name}}
    if choice.mode not in _TOOL_MODES:
        raise InvalidRequest("tool_choice.mode is not set", param="tool_choice")
    return _TOOL_MODES[choice.mode]


def _response_format(response_format: Proto) -> dict[str, Any]:
    if response_format.format_type == chat_pb2.FORMAT_TYPE_JSON_OBJECT:
        return {"type": "json_object"}
    if response_format.format_type == chat_pb2.FORMAT_TYPE_JSON_SCHEMA:
        schema = _json(response_format.schema, "response_format.schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.schema must be a JSON schema object", param="response_format")
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    return {"type": "text"}


def _json(text: str, param: str) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"{param} must be JSON: {exc}", param=param) from exc


def timestamp(seconds: Any) -> Proto:
    return Timestamp(seconds=int(seconds)) if isinstance(seconds, int | float) else Timestamp()


def finish_reason(reason: Any, has_tool_calls: bool) -> int:
    if has_tool_calls and reason in (None, "", "stop"):
        return int(sample_pb2.REASON_TOOL_CALLS)  # some upstreams leave it empty when calling tools
    return int(_FINISH.get(reason, sample_pb2.REASON_INVALID) if reason else sample_pb2.REASON_INVALID)


def tool_call(call: dict[str, Any]) -> Proto:
    function = call.get("function") or {}
    return chat_pb2.ToolCall(
        id=call.get("id") or "",
        type=chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL,
        status=chat_pb2.TOOL_CALL_STATUS_COMPLETED,
        function=chat_pb2.FunctionCall(name=function.get("name") or "", arguments=function.get("arguments") or ""),
    )


def usage(openai_usage: dict[str, Any] | None) -> Proto:
    """`SamplingUsage` from OpenAI usage (cached tokens from prompt details, reasoning from completion's)."""
    found = openai_usage or {}
    prompt = found.get("prompt_tokens") or 0
    completion = found.get("completion_tokens") or 0
    return usage_pb2.SamplingUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=found.get("total_tokens") or prompt + completion,
        prompt_text_tokens=prompt,
        cached_prompt_text_tokens=(found.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
        reasoning_tokens=(found.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0,
    )


def xai_response(answer: dict[str, Any], model: str) -> Proto:
    """A `GetChatCompletionResponse` from an OpenAI chat completion."""
    outputs = []
    for choice in answer.get("choices") or []:
        message = choice.get("message") or {}
        calls = [tool_call(call) for call in message.get("tool_calls") or []]
        outputs.append(
            chat_pb2.CompletionOutput(
                index=choice.get("index") or 0,
                finish_reason=finish_reason(choice.get("finish_reason"), bool(calls)),
                message=chat_pb2.CompletionMessage(
                    role=chat_pb2.ROLE_ASSISTANT,
                    content=message.get("content") or "",
                    reasoning_content=message.get("reasoning_content") or "",
                    tool_calls=calls,
                ),
            )
        )
    return chat_pb2.GetChatCompletionResponse(
        id=answer.get("id") or "",
        outputs=outputs,
        created=timestamp(answer.get("created")),
        model=answer.get("model") or model,
        system_fingerprint=answer.get("system_fingerprint") or "",
        usage=usage(answer.get("usage")),
        citations=[c for c in answer.get("citations") or [] if isinstance(c, str)],
    )


class ChunkStream:
    """OpenAI stream chunks in, xAI chunks out (feed each decoded chunk, then `end()`).

    A chunk that finishes a choice is held back until the next one, so that the usage OpenAI sends in a
    trailing chunk without choices lands on it; tool call fragments are gathered and sent whole with the
    finish."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._id = ""
        self._created: Any = None
        self._fingerprint = ""
        self._usage: dict[str, Any] | None = None
        self._citations: list[str] = []
        self._calls: dict[tuple[int, int], dict[str, Any]] = {}
        self._held: Proto | None = None

    def feed(self, chunk: dict[str, Any]) -> list[Proto]:
        self._id = chunk.get("id") or self._id
        self._created = chunk.get("created") or self._created
        self.model = chunk.get("model") or self.model
        self._fingerprint = chunk.get("system_fingerprint") or self._fingerprint
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        if not self._citations:
            self._citations = [c for c in chunk.get("citations") or [] if isinstance(c, str)]
        outputs = [self._output(choice) for choice in chunk.get("choices") or []]
        if not outputs:
            return []
        out = [self._release(self._held)] if self._held is not None else []
        self._held = None
        current = self._chunk(outputs)
        if any(output.finish_reason for output in outputs):
            self._held = current
        else:
            out.append(self._release(current))
        return out

    def end(self) -> list[Proto]:
        """The last chunk: the held finish (or an empty one) with the total usage and the citations."""
        last = self._held if self._held is not None else self._chunk([])
        self._held = None
        last.citations.extend(self._citations)
        return [self._release(last)]

    def _output(self, choice: dict[str, Any]) -> Proto:
        index = choice.get("index") or 0
        delta = choice.get("delta") or {}
        for fragment in delta.get("tool_calls") or []:
            call = self._calls.setdefault((index, fragment.get("index") or 0), {"function": {"arguments": ""}})
            call["id"] = fragment.get("id") or call.get("id")
            function = fragment.get("function") or {}
            call["function"]["name"] = function.get("name") or call["function"].get("name")
            call["function"]["arguments"] += function.get("arguments") or ""
        reason = choice.get("finish_reason")
        calls = []
        if reason:
            keys = sorted(key for key in self._calls if key[0] == index)
            calls = [tool_call(self._calls.pop(key)) for key in keys]
        return chat_pb2.CompletionOutputChunk(
            index=index,
            finish_reason=finish_reason(reason, bool(calls)) if reason else sample_pb2.REASON_INVALID,
            delta=chat_pb2.Delta(
                role=chat_pb2.ROLE_ASSISTANT,
                content=delta.get("content") or "",
                reasoning_content=delta.get("reasoning_content") or "",
                tool_calls=calls,
            ),
        )

    def _chunk(self, outputs: list[Proto]) -> Proto:
        return chat_pb2.GetChatCompletionChunk(
            id=self._id,
            outputs=outputs,
            created=timestamp(self._created),
            model=self.model,
            system_fingerprint=self._fingerprint,
        )

    def _release(self, chunk: Proto) -> Proto:
        chunk.usage.CopyFrom(usage(self._usage))  # the usage known so far: cumulative, complete at the end
        return chunk

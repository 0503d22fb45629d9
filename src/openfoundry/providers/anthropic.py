"""Anthropic's Messages API, translated both ways to and from OpenAI chat completions.

Wire format from Anthropic's API reference (Messages, streaming Messages, errors, extended thinking).
The translations (`request_body`, `response_body`, `StreamTranslator`, `translate_error`) are pure;
`AnthropicProvider` only moves bytes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from openfoundry.config import ProviderSettings
from openfoundry.errors import FoundryError, InvalidRequest, UpstreamError
from openfoundry.providers.base import Call, Reply, Stream, Usage
from openfoundry.providers.http import Http, malformed, upstream_failure
from openfoundry.wire import sse

BASE_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires max_tokens; this is the cap when the client gives none."""
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}

# Anthropic has no response_format; its documented way to get JSON is a tool whose input_schema is the
# schema. We offer that tool (forced when it is the only one and thinking allows forcing) and hand its
# input back to the client as the message content, so the client sees an ordinary JSON answer.
JSON_TOOL = "json_response"

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
_TOOL_CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}


# -- request: OpenAI chat completions -> Anthropic Messages


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
        value = _arguments(function.get("arguments"), f"{where}.tool_calls[{number}].function.arguments")
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": value})
    return blocks


def _arguments(arguments: Any, param: str) -> dict[str, Any]:
    """A tool call's arguments (a JSON string in OpenAI's format) as the object Anthropic wants."""
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


# -- response: Anthropic Message -> OpenAI chat.completion


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
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


# -- stream: Anthropic events -> OpenAI chat.completion.chunk events


class StreamTranslator:
    """Feed Anthropic stream events in order; get SSE bytes of OpenAI chunks back; `usage` fills as they come.

    `done` turns true after message_stop (then [DONE] was written) or an error event (then it was not).
    """

    def __init__(
        self, provider: str, *, include_usage: bool, json_tool: bool = False, created: int | None = None
    ) -> None:
        self.provider = provider
        self.include_usage = include_usage
        self.json_tool = json_tool
        self.created = int(time.time()) if created is None else created
        self.usage = Usage()
        self.done = False
        self._id: Any = None
        self._model: Any = None
        self._raw_usage: dict[str, Any] = {}
        self._tool_index: dict[Any, int] = {}
        """Anthropic block index -> OpenAI tool call index (tool calls count from 0)."""
        self._json_blocks: set[Any] = set()
        self._finished = False

    def feed_data(self, data: bytes) -> list[bytes]:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(malformed(self.provider, "sent a malformed stream event"))
        return self.feed(event) if isinstance(event, dict) else []

    def feed(self, event: dict[str, Any]) -> list[bytes]:
        match event.get("type"):
            case "message_start":
                message = event.get("message") or {}
                self._id, self._model = message.get("id"), message.get("model")
                self._note_usage(message.get("usage"))
                return [self._chunk({"role": "assistant", "content": ""})]
            case "content_block_start":
                return self._block_start(event.get("index"), event.get("content_block") or {})
            case "content_block_delta":
                return self._block_delta(event.get("index"), event.get("delta") or {})
            case "message_delta":
                return self._message_delta(event)
            case "message_stop":
                return self._stop()
            case "error":
                error = event.get("error") or {}
                status = ERROR_STATUS.get(str(error.get("type")), 500)
                return self._fail(translate_error(self.provider, status, orjson.dumps(event), {}))
            case _:
                return []  # ping, content_block_stop, and event types Anthropic may add

    def end(self) -> list[bytes]:
        """What to send when the upstream closed the stream: an error unless it ended properly."""
        if self.done:
            return []
        return self._fail(UpstreamError(f"provider {self.provider!r} ended the stream before message_stop"))

    def _block_start(self, index: Any, block: dict[str, Any]) -> list[bytes]:
        kind = block.get("type")
        if kind == "tool_use" and self.json_tool and block.get("name") == JSON_TOOL:
            self._json_blocks.add(index)
            return []
        if kind == "tool_use":
            number = self._tool_index[index] = len(self._tool_index)
            function = {"name": block.get("name"), "arguments": ""}
            call = {"index": number, "id": block.get("id"), "type": "function", "function": function}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        return []

    def _block_delta(self, index: Any, delta: dict[str, Any]) -> list[bytes]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        fragment = delta.get("partial_json") if kind == "input_json_delta" else None
        if not fragment:
            return []  # signature_delta, citations_delta, empty fragments
        if index in self._json_blocks:
            return [self._chunk({"content": fragment})]
        if index in self._tool_index:
            call = {"index": self._tool_index[index], "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, event: dict[str, Any]) -> list[bytes]:
        self._note_usage(event.get("usage"))
        stop_reason = (event.get("delta") or {}).get("stop_reason")
        if stop_reason is None or self._finished:
            return []
        self._finished = True
        return [self._chunk({}, finish_reason(stop_reason, called_tools=bool(self._tool_index)))]

    def _stop(self) -> list[bytes]:
        self.done = True
        out = []
        if self.include_usage:
            chunk = {**self._base(), "choices": [], "usage": openai_usage(self.usage)}
            out.append(sse.encode(orjson.dumps(chunk)))
        out.append(sse.DONE)
        return out

    def _fail(self, error: FoundryError) -> list[bytes]:
        self.done = True
        return [sse.encode(error.openai_body())]

    def _note_usage(self, raw: Any) -> None:
        """Anthropic's counts are cumulative: later reports replace the fields they carry."""
        if isinstance(raw, dict):
            self._raw_usage.update({key: value for key, value in raw.items() if value is not None})
            self.usage.update(usage_from(self._raw_usage))

    def _base(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self._model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**self._base(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return sse.encode(orjson.dumps(chunk))


# -- errors


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


# -- the provider


class AnthropicProvider:
    """Claude models through Anthropic's Messages API."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.type = settings.type
        self.settings = settings
        self.url = (settings.base_url or BASE_URL).rstrip("/") + "/messages"
        key = settings.api_key
        auth = {"x-api-key": key.get_secret_value()} if key else {}
        self.http = Http(name, settings, {**auth, "anthropic-version": API_VERSION})

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        await self.http.close()

    def request(self, call: Call) -> bytes:
        if call.kind != "chat":
            what = "text completions" if call.kind == "completions" else "embeddings"
            raise InvalidRequest(
                f"provider {self.name!r} (Anthropic) has no {what}; use /v1/chat/completions",
                code="unsupported_operation",
            )
        return orjson.dumps(request_body(call.body, call.upstream_model, stream=call.stream))

    async def complete(self, call: Call) -> Reply:
        status, data, headers = await self.http.post(self.url, self.request(call))
        if status >= 400:
            raise translate_error(self.name, status, data, headers)
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise malformed(self.name) from exc
        if not isinstance(message, dict):
            raise UpstreamError(f"provider {self.name!r} answered with something other than a message")
        body = response_body(message, created=int(time.time()), json_tool=uses_json_tool(call.body))
        return Reply(orjson.dumps(body), usage_from(message.get("usage")))

    async def stream(self, call: Call) -> Stream:
        response = await self.http.open(self.url, self.request(call))
        if response.status >= 400:
            try:
                data = await response.read()
            except Exception as exc:
                raise self.http.transport_error(exc) from exc
            finally:
                response.release()
            raise translate_error(self.name, response.status, data, response.headers)
        translator = StreamTranslator(self.name, include_usage=call.include_usage, json_tool=uses_json_tool(call.body))
        return Stream(self._relay(self.http.chunks(response), translator), translator.usage)

    async def _relay(
        self, upstream: AsyncGenerator[bytes, None], translator: StreamTranslator
    ) -> AsyncGenerator[bytes, None]:
        decoder = sse.Decoder()
        try:
            async for chunk in upstream:
                out = _translate(translator, decoder.feed(chunk))
                if out:
                    yield out
                if translator.done:
                    return
            out = _translate(translator, decoder.flush()) + b"".join(translator.end())
            if out:
                yield out
        finally:
            await upstream.aclose()


def _translate(translator: StreamTranslator, events: list[sse.Event]) -> bytes:
    out: list[bytes] = []
    for event in events:
        if translator.done:
            break
        out.extend(translator.feed_data(event.data))
    return b"".join(out)

"""Google's Gemini API, translated both ways to and from OpenAI chat completions and embeddings.

Wire format from the Gemini API reference (generateContent, streamGenerateContent with alt=sse,
batchEmbedContents, thinking, function calling, structured output, errors). The translations
(`request_body`, `response_body`, `StreamTranslator`, `embeddings_request`, `embeddings_response`,
`translate_error`) are pure; `GeminiProvider` only moves bytes.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import secrets
import struct
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import orjson

from openfoundry.config import ProviderSettings
from openfoundry.errors import FoundryError, InvalidRequest, UpstreamError
from openfoundry.providers.base import Call, Reply, Stream, Usage
from openfoundry.providers.http import Http, malformed, retry_after, upstream_failure
from openfoundry.wire import sse

BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
THINKING_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"}
)
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "topP",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def new_call_id() -> str:
    """Gemini's function calls carry no id the client can use: each gets a fresh OpenAI-style one."""
    return "call_" + secrets.token_hex(12)


def model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


# -- request: OpenAI chat completions -> Gemini GenerateContentRequest


def request_body(body: dict[str, Any]) -> dict[str, Any]:
    """The Gemini request for an OpenAI chat completions request; unknown fields are ignored."""
    system, contents = _conversation(body.get("messages") or [])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    out.update(_tooling(body))
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    return out


def _conversation(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system parts, contents): tool results go in user turns; same-role turns are merged."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    """Tool call id -> function name, from the assistant turns read so far."""
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), where))
            continue
        if role == "user":
            parts = _user_parts(message.get("content"), where)
        elif role == "assistant":
            role, parts = "model", _model_parts(message, where, names)
        elif role == "tool":
            role, parts = "user", [_function_response(message, where, names)]
        else:
            raise InvalidRequest(f"{where}.role: {role!r} is not supported", param=f"{where}.role")
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        elif parts:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _text_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for number, part in enumerate(content if isinstance(content, list) else [None]):
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else None
            raise InvalidRequest(f"{where}.content[{number}]: part type {kind!r} is not supported here", param=where)
        if part.get("text"):
            parts.append({"text": part["text"]})
    return parts


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_parts(content, where)
    parts = []
    for number, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        place = f"{where}.content[{number}]"
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), place))
        elif kind == "input_audio":
            parts.append(_audio(part.get("input_audio"), place))
        elif kind == "file" and isinstance((part.get("file") or {}).get("file_data"), str):
            parts.append({"inlineData": _inline(part["file"]["file_data"], place)})
        else:
            raise InvalidRequest(f"{place}: part type {kind!r} is not supported", param=where)
    return parts


def _image(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest(f"{where}.image_url.url: required", param=f"{where}.image_url")
    if url.startswith(("http://", "https://")):
        return {"fileData": {"mimeType": guess_image_type(url), "fileUri": url}}
    return {"inlineData": _inline(url, where)}


def _audio(audio: Any, where: str) -> dict[str, Any]:
    audio = audio if isinstance(audio, dict) else {}
    if not isinstance(audio.get("format"), str) or not isinstance(audio.get("data"), str):
        raise InvalidRequest(f"{where}.input_audio: data and format are required", param=where)
    return {"inlineData": {"mimeType": f"audio/{audio['format']}", "data": audio["data"]}}


def guess_image_type(url: str) -> str:
    """Gemini wants a MIME type beside a file URI; the extension is all we know. JPEG if it says nothing."""
    path = urlsplit(url).path
    suffix = PurePosixPath(path).suffix.lower()
    return IMAGE_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "image/jpeg"


def _inline(url: str, where: str) -> dict[str, Any]:
    header, comma, data = url.partition(",")
    params = header[5:].split(";") if header.startswith("data:") else []
    if not comma or not params or not params[0] or "base64" not in params[1:]:
        raise InvalidRequest(f"{where}: must be an http(s) URL or a base64 data: URL", param=where)
    return {"mimeType": params[0], "data": data}


def _model_parts(message: dict[str, Any], where: str, names: dict[str, str]) -> list[dict[str, Any]]:
    # reasoning_content is dropped: Gemini does not take thoughts back as input.
    parts = _text_parts(message.get("content"), where)
    for number, call in enumerate(message.get("tool_calls") or []):
        function, place = call.get("function") or {}, f"{where}.tool_calls[{number}].function"
        name = function.get("name")
        if not isinstance(name, str):
            raise InvalidRequest(f"{place}.name: required", param=f"{place}.name")
        part: dict[str, Any] = {"functionCall": {"name": name, "args": _arguments(function.get("arguments"), place)}}
        # Gemini 3 rejects a function call in the history without the signature it came with; we hand
        # it to clients where Google's own OpenAI-compatible endpoint does, and take it back from there.
        signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
        if isinstance(signature, str):
            part["thoughtSignature"] = signature
        if isinstance(call.get("id"), str):
            names[call["id"]] = name
        parts.append(part)
    return parts


def _arguments(arguments: Any, place: str) -> dict[str, Any]:
    """A tool call's arguments (a JSON string in OpenAI's format) as the object Gemini wants."""
    param = f"{place}.arguments"
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


def _function_response(message: dict[str, Any], where: str, names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise InvalidRequest(
            f"{where}.tool_call_id: {call_id!r} matches no tool call of an earlier assistant message",
            param=f"{where}.tool_call_id",
        )
    text = "".join(part["text"] for part in _text_parts(message.get("content"), where))
    try:
        result = orjson.loads(text)
    except orjson.JSONDecodeError:
        result = text
    return {"functionResponse": {"name": name, "response": {"result": result}}}


def _tooling(body: dict[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or []
    if not tools:
        return {}
    declarations = [_declaration(tool, number) for number, tool in enumerate(tools)]
    out: dict[str, Any] = {"tools": [{"functionDeclarations": declarations}]}
    config = _function_calling(body.get("tool_choice"))
    if config is not None:
        out["toolConfig"] = {"functionCallingConfig": config}
    return out


def _declaration(tool: Any, number: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"tools[{number}]: only function tools are supported", param=f"tools[{number}]")
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        # OpenAI's parameters are JSON Schema; `parameters` takes only Gemini's OpenAPI subset and
        # refuses keys such as additionalProperties, so the schema goes as given in parametersJsonSchema.
        out["parametersJsonSchema"] = function["parameters"]
    return out


def _function_calling(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"mode": _TOOL_MODES[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise InvalidRequest("tool_choice must be auto, none, required or a function", param="tool_choice")


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {name: body[key] for key, name in _SAMPLING.items() if body.get(key) is not None}
    limit = body.get("max_completion_tokens")
    limit = body.get("max_tokens") if limit is None else limit
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_response_format(body.get("response_format")))
    effort = body.get("reasoning_effort")
    if effort == "none":
        config["thinkingConfig"] = {"thinkingBudget": 0}
    elif effort is not None:
        if effort not in THINKING_BUDGETS:
            expected = ", ".join(["none", *THINKING_BUDGETS])
            raise InvalidRequest(f"reasoning_effort must be one of {expected}", param="reasoning_effort")
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort], "includeThoughts": True}
    return config


def _response_format(response_format: Any) -> dict[str, Any]:
    kind = response_format.get("type") if isinstance(response_format, dict) else response_format
    if kind is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        out: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema is not None:
            out["responseJsonSchema"] = schema
        return out
    raise InvalidRequest("response_format.type must be text, json_object or json_schema", param="response_format")


# -- response: Gemini GenerateContentResponse -> OpenAI chat.completion


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
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


# -- stream: Gemini SSE events (each a whole GenerateContentResponse) -> OpenAI chunks


class StreamTranslator:
    """Feed Gemini stream events in order; get SSE bytes of OpenAI chunks back; `usage` fills as they come.

    Gemini has no closing event: call `end()` when the upstream closes. `done` turns true once [DONE]
    or an error event was written.
    """

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        include_usage: bool,
        created: int | None = None,
        call_id: Callable[[], str] = new_call_id,
    ) -> None:
        self.provider = provider
        self.include_usage = include_usage
        self.created = int(time.time()) if created is None else created
        self.call_id = call_id
        self.usage = Usage()
        self.done = False
        self._id: str | None = None
        self._model = model
        self._tools: dict[int, int] = {}
        """Candidate index -> tool calls sent so far (the next tool call index)."""
        self._finished: set[int] = set()

    def feed_data(self, data: bytes) -> list[bytes]:
        if self.done:
            return []
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(malformed(self.provider, "sent a malformed stream event"))
        return self.feed(payload) if isinstance(payload, dict) else []

    def feed(self, payload: dict[str, Any]) -> list[bytes]:
        if self.done:
            return []
        error = payload.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            status = code if isinstance(code, int) else 500
            return self._fail(translate_error(self.provider, status, orjson.dumps(payload), {}))
        if self._id is None:
            self._id = payload.get("responseId") or "chatcmpl-" + secrets.token_hex(12)
            self._model = payload.get("modelVersion") or self._model
        if isinstance(payload.get("usageMetadata"), dict):
            self.usage.update(usage_from(payload["usageMetadata"]))
        candidates = payload.get("candidates") or []
        if not candidates and (payload.get("promptFeedback") or {}).get("blockReason"):
            return self._fail(empty_answer(payload))
        out: list[bytes] = []
        for position, candidate in enumerate(candidates):
            out.extend(self._candidate(candidate.get("index", position), candidate))
        return out

    def end(self) -> list[bytes]:
        """What to send when the upstream closed: usage and [DONE], or an error if it stopped short."""
        if self.done:
            return []
        if not self._tools or set(self._tools) != self._finished:
            return self._fail(UpstreamError(f"provider {self.provider!r} ended the stream before a finishReason"))
        self.done = True
        out = []
        if self.include_usage:
            chunk = {**self._base(), "choices": [], "usage": openai_usage(self.usage)}
            out.append(sse.encode(orjson.dumps(chunk)))
        out.append(sse.DONE)
        return out

    def _candidate(self, index: int, candidate: dict[str, Any]) -> list[bytes]:
        out = []
        if index not in self._tools:
            self._tools[index] = 0
            out.append(self._chunk(index, {"role": "assistant", "content": ""}))
        for part in (candidate.get("content") or {}).get("parts") or []:
            if isinstance(part.get("functionCall"), dict):
                call = {"index": self._tools[index], **tool_call(part, self.call_id)}
                self._tools[index] += 1
                out.append(self._chunk(index, {"tool_calls": [call]}))
            elif isinstance(part.get("text"), str) and part["text"]:
                key = "reasoning_content" if part.get("thought") else "content"
                out.append(self._chunk(index, {key: part["text"]}))
        reason = candidate.get("finishReason")
        if reason and index not in self._finished:
            self._finished.add(index)
            out.append(self._chunk(index, {}, finish_reason(reason, called_tools=self._tools[index] > 0)))
        return out

    def _fail(self, error: FoundryError) -> list[bytes]:
        self.done = True
        return [sse.encode(error.openai_body())]

    def _base(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self.created, "model": self._model}

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**self._base(), "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
        return sse.encode(orjson.dumps(chunk))


# -- embeddings: OpenAI embeddings <-> batchEmbedContents


def embeddings_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    extra = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") is not None else {}
    name = model_path(model)
    return {"requests": [{"model": name, "content": {"parts": [{"text": text}]}, **extra} for text in _inputs(body)]}


def _inputs(body: dict[str, Any]) -> list[str]:
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise InvalidRequest(
            "input must be a string or a non-empty array of strings; Gemini takes no token arrays", param="input"
        )
    return texts


def embeddings_response(payload: dict[str, Any], body: dict[str, Any], model: str) -> dict[str, Any]:
    texts = _inputs(body)
    vectors = [item.get("values") or [] for item in payload.get("embeddings") or [] if isinstance(item, dict)]
    if len(vectors) != len(texts):
        raise UpstreamError(f"Gemini answered {len(vectors)} embeddings for {len(texts)} inputs")
    packed = body.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "index": index, "embedding": _base64(vector) if packed else vector}
        for index, vector in enumerate(vectors)
    ]
    # Gemini reports no token counts for embeddings: one token per whitespace-separated word is our estimate.
    tokens = sum(len(text.split()) for text in texts)
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


# -- errors


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


# -- the provider


class GeminiProvider:
    """Gemini models through the Gemini API (generativelanguage.googleapis.com)."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.type = settings.type
        self.settings = settings
        self.base_url = (settings.base_url or BASE_URL).rstrip("/")
        key = settings.api_key
        self.http = Http(name, settings, {"x-goog-api-key": key.get_secret_value()} if key else {})

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        await self.http.close()

    def url(self, model: str, method: str) -> str:
        return f"{self.base_url}/{model_path(model)}:{method}"

    def _unsupported(self, call: Call) -> InvalidRequest:
        what = "text completions; use /v1/chat/completions" if call.kind == "completions" else "streamed embeddings"
        return InvalidRequest(f"provider {self.name!r} (Gemini) has no {what}", code="unsupported_operation")

    async def complete(self, call: Call) -> Reply:
        if call.kind == "completions":
            raise self._unsupported(call)
        if call.kind == "embeddings":
            request = embeddings_request(call.body, call.upstream_model)
            payload = await self._post(self.url(call.upstream_model, "batchEmbedContents"), request)
            answer = embeddings_response(payload, call.body, call.upstream_model)
            return Reply(orjson.dumps(answer), Usage(prompt_tokens=answer["usage"]["prompt_tokens"]))
        payload = await self._post(self.url(call.upstream_model, "generateContent"), request_body(call.body))
        body = response_body(payload, call.upstream_model, created=int(time.time()))
        return Reply(orjson.dumps(body), usage_from(payload.get("usageMetadata")))

    async def _post(self, url: str, request: dict[str, Any]) -> dict[str, Any]:
        status, data, headers = await self.http.post(url, orjson.dumps(request))
        if status >= 400:
            raise translate_error(self.name, status, data, headers)
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise malformed(self.name) from exc
        if not isinstance(payload, dict):
            raise malformed(self.name, "answered with something other than a JSON object")
        return payload

    async def stream(self, call: Call) -> Stream:
        if call.kind != "chat":
            raise self._unsupported(call)
        request = orjson.dumps(request_body(call.body))
        url = self.url(call.upstream_model, "streamGenerateContent")
        response = await self.http.open(url, request, params={"alt": "sse"})
        if response.status >= 400:
            try:
                data = await response.read()
            except Exception as exc:
                raise self.http.transport_error(exc) from exc
            finally:
                response.release()
            raise translate_error(self.name, response.status, data, response.headers)
        translator = StreamTranslator(self.name, call.upstream_model, include_usage=call.include_usage)
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
    return b"".join(chunk for event in events for chunk in translator.feed_data(event.data))

"""A fake Gemini API upstream: generateContent, streamGenerateContent and batchEmbedContents under /v1beta.

Wire format from the Gemini API reference: the key comes in x-goog-api-key (or ?key=); a wrong key is a
400 INVALID_ARGUMENT with an ErrorInfo detail of reason API_KEY_INVALID, a missing one a 403
PERMISSION_DENIED; errors are {"error": {"code", "message", "status", "details"}}; an unknown model is a
404 NOT_FOUND. streamGenerateContent sends each chunk as a whole GenerateContentResponse, as SSE events
with alt=sse and as one JSON array without it; function calls arrive whole. usageMetadata counts thoughts
(thoughtsTokenCount) apart from candidatesTokenCount, and early stream chunks carry only the prompt count.
The first functionCall part of an answer carries a thoughtSignature, and Gemini 3 models refuse a history
whose function calls in the current turn have lost theirs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.fakes import brain
from tests.fakes.server import Faults, new_app

INVALID_KEY = "API key not valid. Please pass a valid API key."
NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}


def create(api_key: str = "gemini-upstream-key") -> web.Application:
    app = new_app()
    app["key"] = api_key
    app.router.add_post("/v1beta/models/{target}", serve)
    return app


def error(status: int, message: str, reason: str | None = None) -> web.Response:
    body: dict[str, Any] = {"code": status, "message": message, "status": STATUS_NAMES[status]}
    if reason is not None:
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}
        body["details"] = [{**info, "metadata": {"service": "generativelanguage.googleapis.com"}}]
    return web.json_response({"error": body}, status=status)


Answerer = Callable[[web.Request, str, dict[str, Any]], Awaitable[web.StreamResponse]]


async def serve(request: web.Request) -> web.StreamResponse:
    """POST /v1beta/models/{model}:{method}, with the checks Google makes before looking at the body."""
    model, _, method = request.match_info["target"].rpartition(":")
    answerer = ANSWERERS.get(method)
    if not model or answerer is None:
        return error(404, f"Method not found: {request.match_info['target']}")
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if not key:
        return error(403, NO_KEY)
    if key != request.app["key"]:
        return error(400, INVALID_KEY, reason="API_KEY_INVALID")
    if model.startswith("missing"):
        return error(
            404,
            f"models/{model} is not found for API version v1beta, or is not supported for {method}. "
            "Call ListModels to see the list of available models and their supported methods.",
        )
    try:
        body = json.loads(await request.read())
    except ValueError:
        return error(400, "Invalid JSON payload received.")
    if not isinstance(body, dict):
        return error(400, "Invalid JSON payload received. Expected an object.")
    return await answerer(request, model, camel_case(body))


# Values that are free-form JSON (a Struct or a JSON Schema), whose keys are the caller's own names.
FREE_FORM = frozenset({"args", "response", "parametersJsonSchema", "responseJsonSchema", "properties"})


def camel_case(value: Any) -> Any:
    """Google's JSON parser takes a field by its proto name (include_thoughts) as well as its JSON name
    (includeThoughts), and Google's SDK sends some of each: read every field by its JSON name."""
    if isinstance(value, list):
        return [camel_case(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        head, *rest = key.split("_")
        name = head + "".join(word[:1].upper() + word[1:] for word in rest)
        out[name] = item if name in FREE_FORM else camel_case(item)
    return out


# -- the request as the brain sees it


def prompt(body: dict[str, Any], model: str) -> brain.Prompt | web.Response:
    problem = _invalid(body, model)
    if problem is not None:
        return error(400, problem)
    config = body.get("generationConfig") or {}
    thinking = config.get("thinkingConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    return brain.Prompt(
        _turns(body),
        _tools(body),
        _tool_choice(body),
        _lower_types(schema) if config.get("responseMimeType") == "application/json" and schema else None,
        config.get("maxOutputTokens"),
        list(config.get("stopSequences") or []),
        reasoning=bool(thinking.get("includeThoughts")) and thinking.get("thinkingBudget") != 0,
    )


def _invalid(body: dict[str, Any], model: str) -> str | None:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for number, content in enumerate(contents):
        if content.get("role", "user") not in ("user", "model"):
            return "Please use a valid role: user, model."
        if not content.get("parts"):
            return f"* GenerateContentRequest.contents[{number}].parts: contents.parts must not be empty."
    if model.startswith("gemini-3"):
        return _missing_signature(contents)
    return None


def _missing_signature(contents: list[dict[str, Any]]) -> str | None:
    """Gemini 3 checks the current turn: the model's function calls since the last user text."""
    texts = [n for n, c in enumerate(contents) if c.get("role", "user") == "user" and _text(c["parts"])]
    start = texts[-1] if texts else 0
    for number, content in enumerate(contents[start:], start):
        calls = [part for part in content["parts"] if "functionCall" in part]
        if content.get("role") == "model" and calls and "thoughtSignature" not in calls[0]:
            name = calls[0]["functionCall"].get("name")
            return (
                "Function call is missing a thought_signature in functionCall parts. This is required for "
                f"tools to work correctly. Additional data, function call `{name}`, position {number + 1}."
            )
    return None


def _text(parts: list[dict[str, Any]]) -> str:
    return " ".join(part["text"] for part in parts if part.get("text") and not part.get("thought"))


def _turns(body: dict[str, Any]) -> list[brain.Turn]:
    turns = []
    system = body.get("systemInstruction")
    if system:
        turns.append(brain.Turn("system", _text(system.get("parts") or [])))
    for content in body["contents"]:
        parts = content["parts"]
        if content.get("role") == "model":
            turns.append(brain.Turn("assistant", _text(parts)))
            continue
        for part in parts:
            if "functionResponse" in part:
                result = part["functionResponse"]
                turns.append(brain.Turn("tool", _result_text(result.get("response")), tool_name=result.get("name")))
        images = [part["inlineData"]["mimeType"] for part in parts if "inlineData" in part]
        images += ["url" for part in parts if "fileData" in part]
        if _text(parts) or images:
            turns.append(brain.Turn("user", _text(parts), images))
    return turns


def _result_text(response: Any) -> str:
    result = response.get("result", response) if isinstance(response, dict) else response
    return result if isinstance(result, str) else json.dumps(result)


def _tools(body: dict[str, Any]) -> list[brain.Tool]:
    declarations = [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]
    return [
        brain.Tool(d["name"], d.get("parametersJsonSchema") or _lower_types(d.get("parameters") or {}))
        for d in declarations
    ]


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI-style schemas may spell types in capitals (STRING); the brain reads JSON Schema."""
    if isinstance(schema, dict):
        return {k: v.lower() if k == "type" and isinstance(v, str) else _lower_types(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    return schema


def _tool_choice(body: dict[str, Any]) -> str | None:
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = config.get("mode")
    allowed = config.get("allowedFunctionNames") or []
    if mode == "ANY" and allowed:
        return str(allowed[0])
    return {"AUTO": "auto", "ANY": "required", "NONE": "none"}.get(mode or "")


# -- the answer in Gemini's shape


def _signature(call: brain.ToolCall) -> str:
    return base64.b64encode(hashlib.sha256(f"thought:{call.id}".encode()).digest()).decode()


def _calls(answer: brain.Answer) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = [
        {"functionCall": {"name": call.name, "args": call.arguments}} for call in answer.tool_calls
    ]
    if calls:
        calls[0]["thoughtSignature"] = _signature(answer.tool_calls[0])
    return calls


def _parts(answer: brain.Answer) -> list[dict[str, Any]]:
    thoughts: list[dict[str, Any]] = [{"text": answer.reasoning, "thought": True}] if answer.reasoning else []
    return thoughts + ([{"text": answer.text}] if answer.text else []) + _calls(answer)


def _chunks(answer: brain.Answer) -> list[list[dict[str, Any]]]:
    """The answer's parts, one list per stream chunk: thoughts, then each word, then the calls whole."""
    chunks = [[{"text": answer.reasoning, "thought": True}]] if answer.reasoning else []
    chunks += [[{"text": piece}] for piece in answer.words()]
    if answer.tool_calls:
        chunks.append(_calls(answer))
    return chunks or [[{"text": ""}]]


def _usage(answer: brain.Answer, candidates: int, *, final: bool = True) -> dict[str, Any]:
    if not final:  # Gemini's chunks before the last report the prompt only
        return {"promptTokenCount": answer.prompt_tokens, "totalTokenCount": answer.prompt_tokens}
    thoughts = brain.count(answer.reasoning or "") * candidates
    output = (answer.completion_tokens * candidates) - thoughts
    usage = {
        "promptTokenCount": answer.prompt_tokens,
        "candidatesTokenCount": output,
        "totalTokenCount": answer.prompt_tokens + output + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.prompt_tokens}],
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS"}


def _response(
    model: str, body: dict[str, Any], answer: brain.Answer, parts: list[dict[str, Any]], *, final: bool = True
) -> dict[str, Any]:
    count = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
    candidates = []
    for index in range(count):
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
        if final:
            candidate["finishReason"] = FINISH[answer.finish]
        candidates.append(candidate)
    digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:22]
    return {
        "candidates": candidates,
        "usageMetadata": _usage(answer, count, final=final),
        "modelVersion": model,
        "responseId": digest,
    }


async def generate(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    asked = prompt(body, model)
    if isinstance(asked, web.Response):
        return asked
    answer = brain.answer(asked)
    return web.json_response(_response(model, body, answer, _parts(answer)))


async def stream(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    asked = prompt(body, model)
    if isinstance(asked, web.Response):
        return asked
    answer = brain.answer(asked)
    chunks = _chunks(answer)
    events = [_response(model, body, answer, parts, final=n == len(chunks) - 1) for n, parts in enumerate(chunks)]
    sse = request.query.get("alt") == "sse"
    content_type = "text/event-stream" if sse else "application/json; charset=UTF-8"
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    for number, event in enumerate(events):
        if sse:
            data = b"data: " + json.dumps(event).encode() + b"\r\n\r\n"
        else:  # a JSON array, written element by element as Google does
            data = (b"\n,\r\n" if number else b"[") + json.dumps(event, indent=2).encode()
        await _send(request, response, data, number)
    if not sse:
        await response.write(b"]")
    await response.write_eof()
    return response


async def _send(request: web.Request, response: web.StreamResponse, data: bytes, sent: int) -> None:
    """Write one stream element under the shared stream faults (`cut_after`, `drip`) that
    server.send_event applies, keeping Google's framing (SSE events end in CRLF CRLF)."""
    faults: Faults = request.app["faults"]
    if faults.cut_after is not None and sent >= faults.cut_after:
        assert request.transport is not None
        request.transport.abort()
        raise ConnectionResetError("fake cut the stream")
    if faults.drip and sent:
        await asyncio.sleep(faults.drip)
    await response.write(data)


# -- embeddings


def vector(text: str, dimensions: int) -> list[float]:
    """A unit vector that depends only on the text, of any length."""
    raw: list[float] = []
    block = 0
    while len(raw) < dimensions:
        raw += [byte - 127.5 for byte in hashlib.sha256(f"{block}:{text}".encode()).digest()]
        block += 1
    norm = math.sqrt(sum(x * x for x in raw[:dimensions]))
    return [x / norm for x in raw[:dimensions]]


async def embed(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return error(400, "* BatchEmbedContentsRequest.requests: at least one request is required")
    embeddings = []
    for number, item in enumerate(requests):
        if item.get("model") != f"models/{model}":
            return error(
                400,
                f"Model name in requests[{number}] ({item.get('model')!r}) must match the batch's models/{model}.",
            )
        parts = (item.get("content") or {}).get("parts") or []
        if not parts:
            return error(400, f"* BatchEmbedContentsRequest.requests[{number}].content: contents must not be empty.")
        embeddings.append({"values": vector(_text(parts), int(item.get("outputDimensionality") or 8))})
    return web.json_response({"embeddings": embeddings})


ANSWERERS: dict[str, Answerer] = {
    "generateContent": generate,
    "streamGenerateContent": stream,
    "batchEmbedContents": embed,
}

"""A fake OpenAI-compatible upstream, in OpenAI's or xAI's flavour.

Wire format from OpenAI's API reference (chat completions, completions, embeddings, models) and xAI's
REST reference: xAI errors are {"code", "error"}, a bad key is a 400, completion_tokens leaves reasoning
tokens out (total = prompt + completion + reasoning), reasoning_content on reasoning models, and a
streamed usage chunk with `choices: []` when stream_options.include_usage is set.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.fakes import brain
from tests.fakes.server import new_app, send_event


def create(api_key: str = "sk-upstream", flavour: str = "openai") -> web.Application:
    app = new_app()
    app["key"] = api_key
    app["flavour"] = flavour
    app.router.add_post("/v1/chat/completions", _authorized(answer_chat))
    app.router.add_post("/v1/completions", _authorized(answer_completion))
    app.router.add_post("/v1/embeddings", _authorized(answer_embeddings))
    app.router.add_get("/v1/models", models)
    return app


def _error(app: web.Application, status: int, message: str, code: str | None = None) -> web.Response:
    if app["flavour"] == "xai":
        body: dict[str, Any] = {"code": "Client specified an invalid argument", "error": message}
    else:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return web.json_response(body, status=status)


Answerer = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def _authorized(answerer: Answerer) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        body = await _authorized_json(request)
        if isinstance(body, web.Response):
            return body
        return await answerer(request, body)

    return serve


async def _authorized_json(request: web.Request) -> dict[str, Any] | web.Response:
    app = request.app
    if request.headers.get("Authorization") != f"Bearer {app['key']}":
        if app["flavour"] == "xai":
            return _error(
                app, 400, "Incorrect API key provided: ba***na. You can obtain an API key from https://console.x.ai."
            )
        return _error(app, 401, "Incorrect API key provided.", "invalid_api_key")
    try:
        body = json.loads(await request.read())
    except ValueError:
        return _error(app, 400, "We could not parse the JSON body of your request.")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return _error(app, 400, "you must provide a model parameter", "missing_required_parameter")
    if body["model"].startswith("missing"):
        return _error(app, 404, f"The model `{body['model']}` does not exist", "model_not_found")
    return body


def _content(content: Any) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    texts, images = [], []
    for part in content or []:
        if part.get("type") == "text":
            texts.append(part["text"])
        elif part.get("type") == "image_url":
            url = part["image_url"]["url"]
            images.append(url.split(";")[0][5:] if url.startswith("data:") else "url")
    return " ".join(texts), images


def prompt_from_chat(body: dict[str, Any]) -> brain.Prompt:
    turns = []
    names: dict[str, str] = {}
    for message in body["messages"]:
        text, images = _content(message.get("content"))
        for call in message.get("tool_calls") or []:
            names[call["id"]] = call["function"]["name"]
        tool_name = names.get(message.get("tool_call_id", ""))
        turns.append(brain.Turn(message["role"], text, images, tool_name))
    tools = [brain.Tool(t["function"]["name"], t["function"].get("parameters", {})) for t in body.get("tools") or []]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        choice = choice["function"]["name"]
    fmt = body.get("response_format") or {}
    schema = fmt["json_schema"]["schema"] if fmt.get("type") == "json_schema" else None
    stop = body.get("stop") or []
    return brain.Prompt(
        turns,
        tools,
        choice,
        schema,
        body.get("max_completion_tokens") or body.get("max_tokens"),
        [stop] if isinstance(stop, str) else stop,
        reasoning=bool(body.get("reasoning_effort")),
    )


def _usage(app: web.Application, answer: brain.Answer) -> dict[str, Any]:
    reasoning = brain.count(answer.reasoning or "")
    completion = answer.completion_tokens
    if app["flavour"] == "xai":
        completion -= reasoning  # xAI counts reasoning tokens only in total_tokens
    usage = {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "text_tokens": answer.prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    if app["flavour"] == "xai":
        usage["cost_in_usd_ticks"] = 1000 * (answer.prompt_tokens + answer.completion_tokens)
    return usage


def _tool_calls(answer: brain.Answer) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
        for c in answer.tool_calls
    ]


async def answer_chat(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return _error(request.app, 400, "messages must be a non-empty array", "invalid_value")
    answer = brain.answer(prompt_from_chat(body))
    ident = "chatcmpl-" + hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    base = {"id": ident, "created": int(time.time()), "model": body["model"], "system_fingerprint": "fp_fake"}
    if body.get("stream"):
        return await _stream_chat(request, body, answer, base)
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = _tool_calls(answer)
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    result = {
        **base,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish, "logprobs": None}],
        "usage": _usage(request.app, answer),
    }
    if request.app["flavour"] == "xai" and "cite" in (answer.text or ""):
        result["citations"] = ["https://x.ai/news"]
    return web.json_response(result)


async def _stream_chat(
    request: web.Request, body: dict[str, Any], answer: brain.Answer, base: dict[str, Any]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)

    sent = [0]

    async def send(delta: dict[str, Any], finish: str | None = None) -> None:
        chunk = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        await send_event(request, response, json.dumps(chunk).encode(), sent)

    await send({"role": "assistant", "content": ""})
    if answer.reasoning:
        for word in answer.reasoning.split(" "):
            await send({"reasoning_content": word + " "})
    for index, call in enumerate(_tool_calls(answer)):
        await send({"tool_calls": [{"index": index, **call}]})
    for piece in answer.words():
        await send({"content": piece})
    await send({}, answer.finish)
    if (body.get("stream_options") or {}).get("include_usage"):
        chunk = {**base, "object": "chat.completion.chunk", "choices": [], "usage": _usage(request.app, answer)}
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def answer_completion(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        return _error(request.app, 400, "prompt must be a string", "invalid_value")
    stop = body.get("stop") or []
    answer = brain.answer(
        brain.Prompt(
            [brain.Turn("user", prompt)],
            max_tokens=body.get("max_tokens", 16),
            stop=[stop] if isinstance(stop, str) else stop,
        )
    )
    base = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()), "model": body["model"]}
    usage = {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }
    if not body.get("stream"):
        choice = {"index": 0, "text": answer.text, "finish_reason": answer.finish, "logprobs": None}
        return web.json_response({**base, "choices": [choice], "usage": usage})
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    pieces = answer.words()
    for number, piece in enumerate(pieces):
        finish = answer.finish if number == len(pieces) - 1 else None
        chunk = {**base, "choices": [{"index": 0, "text": piece, "finish_reason": finish, "logprobs": None}]}
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    if (body.get("stream_options") or {}).get("include_usage"):
        await response.write(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    return response


def vector(text: str, dimensions: int = 8) -> list[float]:
    """A unit vector that depends only on the text."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(byte - 127.5) for byte in digest[:dimensions]]
    norm = math.sqrt(sum(x * x for x in raw))
    return [x / norm for x in raw]


async def answer_embeddings(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs:
        return _error(request.app, 400, "input must be a string or an array of strings", "invalid_value")
    dimensions = body.get("dimensions", 8)
    data = [
        {"object": "embedding", "index": i, "embedding": vector(str(text), dimensions)} for i, text in enumerate(inputs)
    ]
    tokens = sum(brain.count(str(text)) for text in inputs)
    return web.json_response(
        {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def models(request: web.Request) -> web.Response:
    return web.json_response(
        {"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]}
    )

"""A fake Anthropic Messages upstream: POST /v1/messages, whole or streamed.

Wire format from Anthropic's API reference (Messages, streaming Messages, errors, extended thinking):
the `x-api-key` and `anthropic-version` headers, errors as {"type": "error", "error": {"type", "message"}},
`max_tokens` required, turns alternating from the user's, each `tool_use` answered by a `tool_result` in
the next turn, a thinking budget of at least 1024 and below max_tokens and no forced tool with thinking.
Streams send message_start, ping, each content block (thinking with a signature_delta, text, tool_use
with its input split across input_json_delta fragments), message_delta with the output usage, and
message_stop. Cache reads are reported only when a system block carries cache_control.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

from aiohttp import web

from tests.fakes import brain
from tests.fakes.server import new_app

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def create(api_key: str = "sk-ant-upstream") -> web.Application:
    app = new_app()
    app["key"] = api_key
    app.router.add_post("/v1/messages", messages)
    return app


def error(status: int, kind: str, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    return web.json_response(body, status=status, headers={"request-id": "req_fake"})


def invalid(message: str) -> web.Response:
    return error(400, "invalid_request_error", message)


async def messages(request: web.Request) -> web.StreamResponse:
    if request.headers.get("x-api-key") != request.app["key"]:
        return error(401, "authentication_error", "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return invalid("anthropic-version: header is required")
    try:
        body = json.loads(await request.read())
    except ValueError:
        return invalid("There was an error parsing the body of your request.")
    problem = check(body) if isinstance(body, dict) else "body: Input should be an object"
    if problem:
        return invalid(problem)
    prompt = prompt_from_messages(body)
    answer = brain.answer(prompt)
    ident = "msg_" + hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    usage = _usage(body, answer)
    if body.get("stream"):
        return await _stream(request, ident, body["model"], answer, usage)
    message = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content(answer),
        "stop_reason": _stop_reason(answer),
        "stop_sequence": answer.stop_sequence,
        "usage": usage,
    }
    return web.json_response(message, headers={"request-id": "req_fake"})


def check(body: dict[str, Any]) -> str | None:
    """The first problem the real API would report, in its words, or None."""
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            return f"{field}: Field required"
    turns = body["messages"]
    if not isinstance(turns, list) or not turns:
        return "messages: at least one message is required"
    if turns[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    for number, (before, after) in enumerate(itertools.pairwise(turns), start=1):
        if before.get("role") == after.get("role"):
            return (
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{after.get("role")}" roles in a row'
            )
        missing = _tool_uses(before) - _tool_results(after)
        if missing:
            return (
                f"messages.{number}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(sorted(missing))}"
            )
    return _check_thinking(body)


def _check_thinking(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking") or {}
    if thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens", 0)
    if budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if body["max_tokens"] <= budget:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _tool_uses(message: dict[str, Any]) -> set[str]:
    return {block["id"] for block in _blocks(message) if block.get("type") == "tool_use"}


def _tool_results(message: dict[str, Any]) -> set[str]:
    return {block["tool_use_id"] for block in _blocks(message) if block.get("type") == "tool_result"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(block.get("text", "") for block in content or [] if block.get("type") == "text")


def prompt_from_messages(body: dict[str, Any]) -> brain.Prompt:
    system = body.get("system")
    turns = [brain.Turn("system", _text(system))] if system else []
    names: dict[str, str] = {}
    for message in body["messages"]:
        texts, images = [], []
        for block in _blocks(message):
            kind = block.get("type")
            if kind == "text":
                texts.append(block["text"])
            elif kind == "image":
                source = block["source"]
                images.append(source["media_type"] if source["type"] == "base64" else "url")
            elif kind == "tool_use":
                names[block["id"]] = block["name"]
            elif kind == "tool_result":
                turns.append(brain.Turn("tool", _text(block.get("content")), [], names.get(block["tool_use_id"])))
        if texts or images or message["role"] == "assistant":
            turns.append(brain.Turn(message["role"], " ".join(texts), images))
    tools = [brain.Tool(tool["name"], tool.get("input_schema", {})) for tool in body.get("tools") or []]
    choice: dict[str, Any] = body.get("tool_choice") or {}
    choice_name = {"auto": "auto", "any": "required", "none": "none"}.get(str(choice.get("type")))
    fmt = (body.get("output_config") or {}).get("format") or {}
    return brain.Prompt(
        turns,
        tools,
        choice_name or choice.get("name"),
        fmt.get("schema") if fmt.get("type") == "json_schema" else None,
        body["max_tokens"],
        list(body.get("stop_sequences") or []),
        reasoning=(body.get("thinking") or {}).get("type") == "enabled",
    )


def _stop_reason(answer: brain.Answer) -> str:
    return "stop_sequence" if answer.stop_sequence else STOP_REASONS[answer.finish]


def _usage(body: dict[str, Any], answer: brain.Answer) -> dict[str, Any]:
    system = body.get("system")
    cached = 0
    if isinstance(system, list) and any("cache_control" in block for block in system):
        cached = min(answer.prompt_tokens, max(1, brain.count(_text(system))))
    usage: dict[str, Any] = {
        "input_tokens": answer.prompt_tokens - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": answer.completion_tokens,
    }
    if answer.reasoning:
        usage["output_tokens_details"] = {"thinking_tokens": brain.count(answer.reasoning)}
    return usage


def _only(usage: dict[str, Any], *, output: bool) -> dict[str, Any]:
    """The output counts (sent in message_delta) or the input counts (sent in message_start)."""
    return {key: value for key, value in usage.items() if key.startswith("output_") == output}


def _tool_id(call: brain.ToolCall) -> str:
    return "toolu_" + call.id.removeprefix("call_")


def _signature(text: str) -> str:
    return "EqQB" + hashlib.sha256(text.encode()).hexdigest()[:32]


def content(answer: brain.Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.reasoning:
        blocks.append({"type": "thinking", "thinking": answer.reasoning, "signature": _signature(answer.reasoning)})
    if answer.text:
        blocks.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        blocks.append({"type": "tool_use", "id": _tool_id(call), "name": call.name, "input": call.arguments})
    return blocks


def _pieces(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    """content_block_start, its deltas, content_block_stop for one finished block."""
    kind = block["type"]
    start: dict[str, Any]
    if kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _pieces(block["thinking"], 12)]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        start = {"type": "text", "text": ""}
        words = block["text"].split(" ")
        pieces = [words[0]] + [" " + word for word in words[1:]]
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        fragments = ["", *_pieces(json.dumps(block["input"]), 7)]
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in fragments]
    events = [{"type": "content_block_start", "index": index, "content_block": start}]
    events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
    events.append({"type": "content_block_stop", "index": index})
    return events


async def _stream(
    request: web.Request, ident: str, model: str, answer: brain.Answer, usage: dict[str, Any]
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "request-id": "req_fake"}
    )
    await response.prepare(request)
    start: dict[str, Any] = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**_only(usage, output=False), "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(content(answer)):
        events += _block_events(index, block)
    delta = {"stop_reason": _stop_reason(answer), "stop_sequence": answer.stop_sequence}
    events.append({"type": "message_delta", "delta": delta, "usage": _only(usage, output=True)})
    events.append({"type": "message_stop"})
    for event in events:
        await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
    await response.write_eof()
    return response

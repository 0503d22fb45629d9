"""The Anthropic Messages surface: /v1/messages and /v1/messages/count_tokens, served by any deployment.

Deployments whose hosts all speak Anthropic get the client's bytes with only the model rewritten, and
their answers come back as they are. For every other deployment requests are translated to canonical
chat completions (wire/anthropic.py) and answers back, streams included.
"""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openfoundry.api.http import add_raw_route, answer, parse_object, read_body, until_disconnect
from openfoundry.errors import FoundryError, InvalidRequest
from openfoundry.gateway import Gateway
from openfoundry.tenancy.auth import Principal
from openfoundry.wire import sse
from openfoundry.wire.anthropic import EventStream, anthropic_message, error_body, error_type, openai_request
from openfoundry.wire.requests import check_chat

# count_tokens cannot run a tokenizer (none can be downloaded here), so it estimates from the canonical
# request: about four characters a token for all text (system and messages, tool calls and results,
# and each tool's name, description and schema as JSON), four tokens of framing per message, and 1,600
# per image, what Anthropic documents for the largest image it reads (width x height / 750 tokens,
# images scaled down to at most 1.15 megapixels).
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
TOKENS_PER_IMAGE = 1600


def anthropic_error(exc: FoundryError) -> Response:
    body = orjson.dumps(error_body(error_type(exc.status), exc.message))
    return Response(body, exc.status, headers=exc.headers, media_type="application/json")


def _body_schema(required: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": required, "additionalProperties": True}


def add_routes(app: FastAPI, gateway: Gateway, max_body_bytes: int) -> None:
    async def accept(request: Request) -> tuple[Principal, dict[str, Any], bytes]:
        principal = gateway.authenticate(request.headers)
        if not request.headers.get("anthropic-version"):
            raise InvalidRequest("anthropic-version: header is required")
        raw = await read_body(request, max_body_bytes)
        return principal, parse_object(raw), raw

    async def native(request: Request, principal: Principal, body: dict[str, Any], raw: bytes) -> Response:
        """A deployment Anthropic hosts: the client's bytes go up with only the model rewritten."""
        if not isinstance(body.get("messages"), list):
            raise InvalidRequest("messages: must be an array of messages", param="messages")
        outcome = await until_disconnect(request, gateway.call(principal, "messages", body, raw, time.perf_counter()))
        return answer(outcome)

    async def anthropic_messages(request: Request) -> Response:
        started = time.perf_counter()
        try:
            principal, body, raw = await accept(request)
            if gateway.native(gateway.resolve(principal, body.get("model")), "anthropic"):
                return await native(request, principal, body, raw)
            canonical = openai_request(body)
            check_chat(canonical)
            work = gateway.call(principal, "chat", canonical, orjson.dumps(canonical), started)
            outcome = await until_disconnect(request, work)
        except FoundryError as exc:
            return anthropic_error(exc)
        stops = canonical.get("stop") or []
        if outcome.chunks is not None:
            return answer(outcome, chunks=sse.translate(outcome.chunks, EventStream(stop_sequences=stops)))
        assert outcome.body is not None
        message = anthropic_message(orjson.loads(outcome.body), stop_sequences=stops)
        return answer(outcome, body=orjson.dumps(message))

    async def anthropic_count_tokens(request: Request) -> Response:
        try:
            principal, body, _ = await accept(request)
            canonical = openai_request({**body, "max_tokens": 1})  # counting takes no max_tokens
            check_chat(canonical)
            gateway.resolve(principal, canonical["model"])
        except FoundryError as exc:
            return anthropic_error(exc)
        return Response(orjson.dumps({"input_tokens": estimate_input_tokens(canonical)}), media_type="application/json")

    body = _body_schema(["model", "max_tokens", "messages"])
    add_raw_route(app, "/v1/messages", anthropic_messages, "POST", tag="anthropic", body=body)
    body = _body_schema(["model", "messages"])
    add_raw_route(app, "/v1/messages/count_tokens", anthropic_count_tokens, "POST", tag="anthropic", body=body)


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """An estimate of a canonical chat request's input tokens (see CHARS_PER_TOKEN above)."""
    chars = images = 0
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        for part in content if isinstance(content, list) else []:
            chars += len(part.get("text") or "")
            images += part.get("type") == "image_url"
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    chars += sum(len(orjson.dumps(tool["function"])) for tool in body.get("tools") or [])
    framing = TOKENS_PER_MESSAGE * len(body["messages"])
    return math.ceil(chars / CHARS_PER_TOKEN) + framing + TOKENS_PER_IMAGE * images

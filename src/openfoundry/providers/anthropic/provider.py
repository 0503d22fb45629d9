"""The Anthropic provider: moves bytes between the gateway and the Messages API; translation is elsewhere."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from openfoundry.config import ProviderSettings
from openfoundry.errors import FoundryError, InvalidRequest, UpstreamError
from openfoundry.providers.anthropic.request import request_body, uses_json_tool
from openfoundry.providers.anthropic.response import response_body, translate_error, usage_from
from openfoundry.providers.anthropic.stream import StreamTranslator
from openfoundry.providers.base import Call, Reply, Stream, Usage
from openfoundry.providers.http import Http, malformed
from openfoundry.wire import sse

BASE_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"


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
        if call.kind == "messages":  # a Messages request from a Messages client: only the model changes
            return orjson.dumps({**call.body, "model": call.upstream_model})
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
        if call.kind == "messages":
            return Reply(data, usage_from(message.get("usage")))
        body = response_body(message, created=int(time.time()), json_tool=uses_json_tool(call.body))
        return Reply(orjson.dumps(body), usage_from(message.get("usage")))

    async def stream(self, call: Call) -> Stream:
        upstream = await self.http.open_stream(self.url, self.request(call), self._error)
        if call.kind == "messages":
            usage = Usage()
            return Stream(_passthrough(upstream, usage), usage)
        translator = StreamTranslator(self.name, include_usage=call.include_usage, json_tool=uses_json_tool(call.body))
        return Stream(sse.translate(upstream, translator), translator.usage)

    def _error(self, status: int, data: bytes, headers: Mapping[str, str]) -> FoundryError:
        return translate_error(self.name, status, data, headers)


async def _passthrough(upstream: AsyncGenerator[bytes, None], usage: Usage) -> AsyncGenerator[bytes, None]:
    """Anthropic's events as they came, noting the usage that message_start and message_delta report."""
    decoder = sse.Decoder()
    reported: dict[str, Any] = {}
    try:
        async for chunk in upstream:
            out = []
            for event in decoder.feed(chunk):
                if event.event in ("message_start", "message_delta"):
                    payload = orjson.loads(event.data)
                    message = payload.get("message") if event.event == "message_start" else payload
                    reported.update((message or {}).get("usage") or {})
                    usage.update(usage_from(reported))
                out.append(sse.encode(event.data, event.event))
            if out:
                yield b"".join(out)
    finally:
        await upstream.aclose()

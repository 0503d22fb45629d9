"""The Gemini provider: moves bytes between the gateway and the Gemini API; translation is elsewhere."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from openfoundry.config import ProviderSettings
from openfoundry.errors import InvalidRequest
from openfoundry.providers.base import Call, Reply, Stream, Usage
from openfoundry.providers.gemini.embeddings import embeddings_request, embeddings_response
from openfoundry.providers.gemini.request import model_path, request_body
from openfoundry.providers.gemini.response import response_body, translate_error, usage_from
from openfoundry.providers.gemini.stream import StreamTranslator
from openfoundry.providers.http import Http, malformed
from openfoundry.wire import sse

BASE_URL = "https://generativelanguage.googleapis.com/v1beta"


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

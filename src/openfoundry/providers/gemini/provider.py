"""The Gemini provider: moves bytes between the gateway and the Gemini API; translation is elsewhere."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from openfoundry.config import ProviderSettings
from openfoundry.errors import FoundryError, InvalidRequest
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
        upstream = await self.http.open_stream(url, request, self._error, params={"alt": "sse"})
        translator = StreamTranslator(self.name, call.upstream_model, include_usage=call.include_usage)
        return Stream(sse.translate(upstream, translator), translator.usage)

    def _error(self, status: int, data: bytes, headers: Mapping[str, str]) -> FoundryError:
        return translate_error(self.name, status, data, headers)

"""Upstreams that speak OpenAI's API: the client's bytes go through with only `model` rewritten."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from openfoundry.config import ProviderSettings
from openfoundry.errors import FoundryError, UpstreamUnavailable
from openfoundry.providers.base import Call, Reply, Stream, Usage
from openfoundry.providers.http import Http, error_fields, malformed, upstream_failure
from openfoundry.wire import sse

BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "xai": "https://api.x.ai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "openrouter": "https://openrouter.ai/api/v1",
}

PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}

# Upstreams whose completion_tokens leave reasoning tokens out (xAI counts them only in total_tokens).
REASONING_OUTSIDE_COMPLETION = frozenset({"xai"})


class OpenAICompatible:
    """openai, xai, mistral, deepseek, groq, openrouter and any OpenAI-compatible server."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.type = settings.type
        self.settings = settings
        base_url = settings.base_url or BASE_URLS.get(settings.type)
        if base_url is None:
            raise ValueError(f"providers.{name}.base_url: required for type {settings.type!r}")
        self.base_url = base_url.rstrip("/")
        self.http = Http(name, settings, self.auth_headers())
        self._reasoning_outside = settings.type in REASONING_OUTSIDE_COMPLETION

    def auth_headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}

    def url(self, call: Call) -> str:
        return self.base_url + PATHS[call.kind]

    def params(self) -> Mapping[str, str] | None:
        return None

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        await self.http.close()

    def request_body(self, call: Call) -> bytes:
        """The client's bytes, unless `model` differs or we must ask for streamed usage."""
        wants_usage = call.stream and call.kind != "embeddings" and not call.include_usage
        if call.body.get("model") == call.upstream_model and not wants_usage:
            return call.raw
        body = dict(call.body)
        body["model"] = call.upstream_model
        if wants_usage:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return orjson.dumps(body)

    async def complete(self, call: Call) -> Reply:
        status, data, headers = await self.http.post(self.url(call), self.request_body(call), params=self.params())
        if status >= 400:
            raise self.error(status, data, headers)
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise malformed(self.name) from exc
        return Reply(data, self.usage(payload.get("usage") if isinstance(payload, dict) else None))

    async def stream(self, call: Call) -> Stream:
        upstream = await self.http.open_stream(
            self.url(call), self.request_body(call), self.error, params=self.params()
        )
        usage = Usage()
        return Stream(self._relay(upstream, usage, hide_usage=not call.include_usage), usage)

    async def _relay(
        self, upstream: AsyncGenerator[bytes, None], usage: Usage, *, hide_usage: bool
    ) -> AsyncGenerator[bytes, None]:
        """Forward each SSE event as it arrives, noting usage; a stream must end with [DONE]."""
        decoder = sse.Decoder()
        done = False
        try:
            async for chunk in upstream:
                out = []
                for event in decoder.feed(chunk):
                    done = done or event.data == b"[DONE]"
                    relayed = self._relay_event(event, usage, hide_usage)
                    if relayed:
                        out.append(relayed)
                if out:
                    yield b"".join(out)
            if not done:
                raise UpstreamUnavailable(f"provider {self.name!r} ended the stream before [DONE]")
        finally:
            await upstream.aclose()

    def _relay_event(self, event: sse.Event, usage: Usage, hide_usage: bool) -> bytes | None:
        """The event as the client gets it: as it came, without the usage we asked for, or as an error."""
        data = event.data
        # OpenAI sends "usage": null on every chunk once include_usage is on: only a real usage (or an
        # error) is worth parsing.
        interesting = data.startswith(b"{") and (_has_usage(data) or b'"error"' in data)
        if not interesting:
            return sse.encode(data, event.event)
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise malformed(self.name, "sent a malformed stream event") from exc
        if "choices" not in payload and isinstance(payload.get("error"), dict | str):
            return sse.encode(self.error(502, data, {}).openai_body())
        reported = self.usage(payload.get("usage"))
        if reported is None:
            return sse.encode(data, event.event)
        usage.update(reported)
        if not hide_usage:
            return sse.encode(data, event.event)
        if not payload.get("choices"):
            return None
        del payload["usage"]
        return sse.encode(orjson.dumps(payload), event.event)

    def usage(self, raw: Any) -> Usage | None:
        if not isinstance(raw, dict):
            return None
        prompt_details = raw.get("prompt_tokens_details") or {}
        completion_details = raw.get("completion_tokens_details") or {}
        reasoning = int(completion_details.get("reasoning_tokens") or 0)
        completion = int(raw.get("completion_tokens") or 0)
        if self._reasoning_outside:
            completion += reasoning
        return Usage(
            prompt_tokens=int(raw.get("prompt_tokens") or 0),
            completion_tokens=completion,
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
            reasoning_tokens=reasoning,
        )

    def error(self, status: int, data: bytes, headers: Mapping[str, str]) -> FoundryError:
        """Map an upstream error body (OpenAI's shape, or xAI's {"code", "error"}) to a FoundryError."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            payload = None
        message, kind, code, param = error_fields(payload)
        if message is None and isinstance(payload, dict) and isinstance(payload.get("error"), str):
            message, code = payload["error"], None
        if message is None:
            text = data[:500].decode(errors="replace").strip()
            message = text or f"HTTP {status}"
        auth_refused = status == 400 and "api key" in message.lower()
        return upstream_failure(
            self.name, status, message, headers, type=kind, code=code, param=param, auth_refused=auth_refused
        )


def _has_usage(data: bytes) -> bool:
    at = data.find(b'"usage"')
    return at >= 0 and data[at + 7 : at + 16].lstrip(b": ")[:4] != b"null"

"""The `xai_api.Chat` and `xai_api.Models` services, served by the gateway like any other surface."""

from __future__ import annotations

import asyncio
import calendar
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
import orjson
from xai_sdk.proto import chat_pb2, deferred_pb2, models_pb2

from openfoundry.api.xai_grpc.translate import ChunkStream, Proto, openai_request, timestamp, xai_response
from openfoundry.deployments import Deployment
from openfoundry.errors import FoundryError, NotFound
from openfoundry.gateway import Gateway
from openfoundry.tenancy.auth import Principal
from openfoundry.wire import sse
from openfoundry.wire.requests import check_chat

DEFERRED_TTL_SECONDS = 15 * 60
"""How long a deferred completion's result is kept (in this process's memory) after it was started."""

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
# Errors inside a stream come as OpenAI error bodies, without their status.
_STREAM_CODES = {
    "rate_limit_error": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "timeout_error": grpc.StatusCode.DEADLINE_EXCEEDED,
    "invalid_request_error": grpc.StatusCode.INVALID_ARGUMENT,
}
_MODALITIES = {"text": models_pb2.TEXT, "image": models_pb2.IMAGE, "embedding": models_pb2.EMBEDDING}
_PRICE_UNITS = 10_000
"""xAI prices tokens in 1/100 US cents per million tokens; the catalog in US dollars per million."""


def status_code(status: int) -> Any:
    """The gRPC status for an HTTP status (UNAVAILABLE, which clients retry, only for 502/503)."""
    return _CODES.get(status) or (grpc.StatusCode.INTERNAL if status >= 500 else grpc.StatusCode.INVALID_ARGUMENT)


async def _abort(context: Any, exc: FoundryError) -> NoReturn:
    await context.abort(status_code(exc.status), exc.message)
    raise AssertionError("abort returns by raising")  # pragma: no cover


def _authenticate(gateway: Gateway, context: Any) -> Principal:
    """The key from the `authorization` metadata. The peer stands in for HTTP's Host: a gateway running
    without keys serves loopback clients only."""
    metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
    headers = {"host": "localhost" if _is_loopback_peer(context.peer() or "") else "remote"}
    if "authorization" in metadata:
        headers["authorization"] = metadata["authorization"]
    return gateway.authenticate(headers)


def _is_loopback_peer(peer: str) -> bool:
    return peer.startswith(("ipv4:127.", "ipv6:[::1]", "unix:"))


@dataclass
class _Deferred:
    key_id: str | None
    expires: float
    task: asyncio.Task[Proto] = field(repr=False)


class ChatService:
    """`xai_api.Chat`: completions, streamed completions and deferred completions."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._deferred: dict[str, _Deferred] = {}

    async def GetCompletion(self, request: Proto, context: Any) -> Proto:
        try:
            principal = _authenticate(self.gateway, context)
            return await self._complete(principal, request)
        except FoundryError as exc:
            await _abort(context, exc)

    async def GetCompletionChunk(self, request: Proto, context: Any) -> AsyncIterator[Proto]:
        started = time.perf_counter()
        try:
            principal = _authenticate(self.gateway, context)
            body = self._body(request) | {"stream": True, "stream_options": {"include_usage": True}}
            outcome = await self.gateway.call(principal, "chat", body, orjson.dumps(body), started)
        except FoundryError as exc:
            await _abort(context, exc)
        stream = ChunkStream(request.model)
        if outcome.chunks is None:  # the deployment answered whole: send it as one chunk
            assert outcome.body is not None
            for chunk in _whole_as_chunks(orjson.loads(outcome.body), stream):
                yield chunk
            return
        decoder = sse.Decoder()
        try:
            async for data in outcome.chunks:
                for event in decoder.feed(data):
                    if event.data == b"[DONE]":
                        continue
                    parsed = orjson.loads(event.data)
                    if "error" in parsed:
                        error = parsed["error"] or {}
                        code = _STREAM_CODES.get(str(error.get("type")), grpc.StatusCode.INTERNAL)
                        await context.abort(code, error.get("message") or "the upstream failed mid-stream")
                    for chunk in stream.feed(parsed):
                        yield chunk
        finally:
            await outcome.chunks.aclose()
        for chunk in stream.end():
            yield chunk

    async def StartDeferredCompletion(self, request: Proto, context: Any) -> Proto:
        try:
            principal = _authenticate(self.gateway, context)
            self._body(request)  # refuse a bad request now rather than when polled
        except FoundryError as exc:
            await _abort(context, exc)
        self._forget_expired()
        request_id = str(uuid.uuid4())
        task = asyncio.create_task(self._complete(principal, request))
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # a result never polled is no error
        self._deferred[request_id] = _Deferred(principal.key_id, time.monotonic() + DEFERRED_TTL_SECONDS, task)
        return deferred_pb2.StartDeferredResponse(request_id=request_id)

    async def GetDeferredCompletion(self, request: Proto, context: Any) -> Proto:
        try:
            principal = _authenticate(self.gateway, context)
            entry = self._deferred.get(request.request_id)
            if entry is None or entry.key_id != principal.key_id:
                raise NotFound(f"no deferred completion '{request.request_id}'")
        except FoundryError as exc:
            await _abort(context, exc)
        if time.monotonic() > entry.expires:
            self._deferred.pop(request.request_id, None)
            entry.task.cancel()
            return chat_pb2.GetDeferredCompletionResponse(status=deferred_pb2.EXPIRED)
        if not entry.task.done():
            return chat_pb2.GetDeferredCompletionResponse(status=deferred_pb2.PENDING)
        self._deferred.pop(request.request_id, None)
        if isinstance(entry.task.exception(), FoundryError):
            await _abort(context, entry.task.exception())  # type: ignore[arg-type]
        return chat_pb2.GetDeferredCompletionResponse(status=deferred_pb2.DONE, response=entry.task.result())

    async def GetStoredCompletion(self, request: Proto, context: Any) -> Proto:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "stored completions are not kept by this gateway")

    async def DeleteStoredCompletion(self, request: Proto, context: Any) -> Proto:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "stored completions are not kept by this gateway")

    async def CompactContext(self, request: Proto, context: Any) -> Proto:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "context compaction is not offered by this gateway")

    def close(self) -> None:
        for entry in self._deferred.values():
            entry.task.cancel()
        self._deferred.clear()

    def _body(self, request: Proto) -> dict[str, Any]:
        body = openai_request(request)
        check_chat(body)
        return body

    async def _complete(self, principal: Principal, request: Proto) -> Proto:
        started = time.perf_counter()
        body = self._body(request)
        outcome = await self.gateway.call(principal, "chat", body, orjson.dumps(body), started)
        assert outcome.body is not None
        return xai_response(orjson.loads(outcome.body), request.model)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for request_id in [rid for rid, entry in self._deferred.items() if entry.expires < now]:
            self._deferred.pop(request_id).task.cancel()


def _whole_as_chunks(answer: dict[str, Any], stream: ChunkStream) -> list[Proto]:
    choices = [
        {"index": c.get("index") or 0, "delta": c.get("message") or {}, "finish_reason": c.get("finish_reason")}
        for c in answer.get("choices") or []
    ]
    for choice in choices:
        calls = choice["delta"].get("tool_calls") or []
        choice["delta"] = choice["delta"] | {"tool_calls": [call | {"index": i} for i, call in enumerate(calls)]}
    return stream.feed(answer | {"choices": choices}) + stream.end()


class ModelsService:
    """`xai_api.Models`: the deployments this key may use, by deployment name."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def ListLanguageModels(self, request: Proto, context: Any) -> Proto:
        found = await self._list(context, "chat")
        return models_pb2.ListLanguageModelsResponse(models=[_language_model(d) for d in found])

    async def ListEmbeddingModels(self, request: Proto, context: Any) -> Proto:
        found = await self._list(context, "embeddings")
        return models_pb2.ListEmbeddingModelsResponse(models=[_embedding_model(d) for d in found])

    async def ListImageGenerationModels(self, request: Proto, context: Any) -> Proto:
        found = await self._list(context, "image")
        return models_pb2.ListImageGenerationModelsResponse(models=[_image_model(d) for d in found])

    async def GetLanguageModel(self, request: Proto, context: Any) -> Proto:
        return _language_model(await self._get(context, request.name, "chat"))

    async def GetEmbeddingModel(self, request: Proto, context: Any) -> Proto:
        return _embedding_model(await self._get(context, request.name, "embeddings"))

    async def GetImageGenerationModel(self, request: Proto, context: Any) -> Proto:
        return _image_model(await self._get(context, request.name, "image"))

    async def _list(self, context: Any, kind: str) -> list[Deployment]:
        try:
            principal = _authenticate(self.gateway, context)
        except FoundryError as exc:
            await _abort(context, exc)
        return [d for d in self.gateway.deployments if d.card.kind == kind and principal.may_use(d.name)]

    async def _get(self, context: Any, name: str, kind: str) -> Deployment:
        try:
            deployment = self.gateway.resolve(_authenticate(self.gateway, context), name)
            if deployment.card.kind != kind:
                raise NotFound(f"'{name}' is not a {kind} model", code="model_not_found")
        except FoundryError as exc:
            await _abort(context, exc)
        return deployment


def _modalities(names: Iterable[str]) -> list[int]:
    return [_MODALITIES[name] for name in names if name in _MODALITIES]


def _price(usd_per_million: float | None) -> int:
    return round((usd_per_million or 0) * _PRICE_UNITS)


def _created(deployment: Deployment) -> Proto:
    released = deployment.card.release_date
    return timestamp(calendar.timegm(released.timetuple())) if released else timestamp(None)


def _language_model(deployment: Deployment) -> Proto:
    card = deployment.card
    return models_pb2.LanguageModel(
        name=deployment.name,
        version=card.id,
        input_modalities=_modalities(card.modalities.input),
        output_modalities=_modalities(card.modalities.output),
        prompt_text_token_price=_price(card.pricing.input),
        prompt_image_token_price=_price(card.pricing.input),
        cached_prompt_token_price=_price(card.pricing.cached_input),
        completion_text_token_price=_price(card.pricing.output),
        created=_created(deployment),
        max_prompt_length=card.context_window,
    )


def _embedding_model(deployment: Deployment) -> Proto:
    card = deployment.card
    return models_pb2.EmbeddingModel(
        name=deployment.name,
        version=card.id,
        input_modalities=_modalities(card.modalities.input),
        output_modalities=_modalities(card.modalities.output),
        prompt_text_token_price=_price(card.pricing.input),
        created=_created(deployment),
    )


def _image_model(deployment: Deployment) -> Proto:
    card = deployment.card
    return models_pb2.ImageGenerationModel(
        name=deployment.name,
        version=card.id,
        input_modalities=_modalities(card.modalities.input),
        output_modalities=_modalities(card.modalities.output),
        created=_created(deployment),
        max_prompt_length=card.context_window,
    )

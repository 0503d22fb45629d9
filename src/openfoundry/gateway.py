"""The request pipeline, top to bottom: authenticate -> resolve -> route -> call -> meter.

Surfaces (api/) parse their wire format into a canonical body and hand it here; providers do the
talking. Nothing here knows an HTTP framework.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

from openfoundry.deployments import Backend, Deployment, Deployments
from openfoundry.errors import Forbidden, FoundryError, ModelNotFound, Unavailable, UpstreamTimeout, UpstreamUnavailable
from openfoundry.providers.base import Kind, Stream, Usage
from openfoundry.routing.dispatch import Dispatcher, Served
from openfoundry.telemetry.metrics import Metrics
from openfoundry.tenancy.auth import Authenticator, Principal
from openfoundry.wire import sse


@dataclass(slots=True)
class Outcome:
    """A served call: which deployment and backend, and either the whole body or the stream."""

    deployment: Deployment
    backend: Backend
    body: bytes | None = None
    chunks: AsyncGenerator[bytes, None] | None = None


def fallback_condition(exc: FoundryError) -> str | None:
    """Which `fallback_on` condition an error meets, if any."""
    if isinstance(exc, Unavailable | UpstreamUnavailable | UpstreamTimeout) or exc.status in (502, 503, 504):
        return "unavailable"
    text = f"{exc.code or ''} {exc.message}".lower()
    if "context_length" in text or "context length" in text or "prompt is too long" in text:
        return "context_length_exceeded"
    if "content_filter" in text or "content filter" in text:
        return "content_filter"
    return None


class Gateway:
    def __init__(self, auth: Authenticator, deployments: Deployments, dispatcher: Dispatcher, metrics: Metrics) -> None:
        self.auth = auth
        self.deployments = deployments
        self.dispatcher = dispatcher
        self.metrics = metrics

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return self.auth.authenticate(headers, admin_route=False)

    def resolve(self, principal: Principal, model: Any) -> Deployment:
        deployment = self.deployments.get(model) if isinstance(model, str) else None
        if deployment is None:
            raise ModelNotFound(f"The model '{model}' does not exist or you do not have access to it.", param="model")
        if not principal.may_use(deployment.name):
            raise Forbidden(
                f"this API key may not use deployment '{model}'", param="model", code="deployment_not_allowed"
            )
        return deployment

    async def call(self, principal: Principal, kind: Kind, body: dict[str, Any], raw: bytes, started: float) -> Outcome:
        deployment = self.resolve(principal, body.get("model"))
        stream = bool(body.get("stream")) and kind != "embeddings"
        tried = {deployment.name}
        while True:
            try:
                served = await self.dispatcher.dispatch(deployment, kind, body, raw, stream)
            except FoundryError as exc:
                self.metrics.error(deployment.name, "", kind, exc.code or exc.type)
                fallback = self._fallback(deployment, exc, tried)
                if fallback is None:
                    self._record(deployment, "", kind, exc.status, started, None, None)
                    raise
                deployment = fallback
                tried.add(fallback.name)
                continue
            return self._outcome(deployment, served, kind, started)

    def _fallback(self, deployment: Deployment, exc: FoundryError, tried: set[str]) -> Deployment | None:
        condition = fallback_condition(exc)
        if condition is None or condition not in deployment.settings.fallback_on:
            return None
        for name in deployment.settings.fallbacks:
            fallback = self.deployments.get(name)
            if fallback is not None and name not in tried:
                return fallback
        return None

    def _outcome(self, deployment: Deployment, served: Served, kind: Kind, started: float) -> Outcome:
        provider = served.backend.provider
        if served.stream is not None:
            chunks = self._metered(served.stream, deployment, provider, kind, started, served.upstream_seconds)
            return Outcome(deployment, served.backend, chunks=chunks)
        assert served.reply is not None
        self._record(deployment, provider, kind, 200, started, served.upstream_seconds, served.reply.usage)
        return Outcome(deployment, served.backend, body=served.reply.body)

    async def _metered(
        self, stream: Stream, deployment: Deployment, provider: str, kind: Kind, started: float, upstream: float
    ) -> AsyncGenerator[bytes, None]:
        status = 499
        try:
            async for chunk in stream.chunks:
                yield chunk
            status = 200
        except FoundryError as exc:
            status = exc.status
            self.metrics.error(deployment.name, provider, kind, exc.code or exc.type)
            yield sse.encode(exc.openai_body())
        finally:
            await stream.chunks.aclose()
            self._record(deployment, provider, kind, status, started, upstream, stream.usage)

    def _record(
        self,
        deployment: Deployment,
        provider: str,
        kind: Kind,
        status: int,
        started: float,
        upstream: float | None,
        usage: Usage | None,
    ) -> None:
        self.metrics.record(
            deployment.name,
            provider,
            kind,
            status=status,
            duration=time.perf_counter() - started,
            upstream=upstream,
            usage=usage,
        )

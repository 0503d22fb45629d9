"""The request pipeline, top to bottom: authenticate -> resolve -> limit -> route -> call -> meter.

Surfaces (api/) parse their wire format into a canonical body and hand it here; providers do the
talking. Nothing here knows an HTTP framework.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from openfoundry.deployments import Backend, Deployment, Deployments
from openfoundry.errors import (
    Forbidden,
    FoundryError,
    ModelNotFound,
    RateLimited,
    Unavailable,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from openfoundry.limits.limiter import Headers, Limiter, Ticket, as_text, estimate_tokens
from openfoundry.metering.cost import cost_usd
from openfoundry.metering.meter import Meter
from openfoundry.metering.record import UsageRecord
from openfoundry.providers.base import Kind, Stream, Usage
from openfoundry.routing.dispatch import Dispatcher, Served
from openfoundry.telemetry.metrics import Metrics
from openfoundry.tenancy.auth import Authenticator, Principal
from openfoundry.wire import sse
from openfoundry.wire.anthropic import error_body, error_type


@dataclass(slots=True)
class Outcome:
    """A served call: which deployment and backend, either the whole body or the stream, and headers."""

    deployment: Deployment
    backend: Backend
    body: bytes | None = None
    chunks: AsyncGenerator[bytes, None] | None = None
    headers: Headers = field(default_factory=list)
    """x-ratelimit-* headers from admission, ready to send."""


@dataclass(slots=True)
class Visit:
    """One admitted call, as metering needs it."""

    principal: Principal
    kind: Kind
    ticket: Ticket
    started: float
    """perf_counter() when the request arrived."""
    arrived: float
    """Epoch seconds when the request arrived."""
    fallback_tickets: tuple[Ticket, ...] = ()
    """Its admissions to the fallback deployments it was sent to, in turn, against their own limits."""


def stream_error(kind: Kind, exc: FoundryError) -> bytes:
    """The event that ends a stream broken mid-way, in the stream's own protocol."""
    if kind == "messages":
        return sse.encode(orjson.dumps(error_body(error_type(exc.status), exc.message)), "error")
    return sse.encode(exc.openai_body())


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
    def __init__(
        self,
        auth: Authenticator,
        deployments: Deployments,
        limiter: Limiter,
        dispatcher: Dispatcher,
        meter: Meter,
        metrics: Metrics,
    ) -> None:
        self.auth = auth
        self.deployments = deployments
        self.limiter = limiter
        self.dispatcher = dispatcher
        self.meter = meter
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

    def native(self, deployment: Deployment, provider_type: str) -> bool:
        """Whether every backend of the deployment speaks `provider_type`'s own protocol."""
        providers = self.dispatcher.providers
        return all(providers[backend.provider].type == provider_type for backend in deployment.backends)

    async def call(self, principal: Principal, kind: Kind, body: dict[str, Any], raw: bytes, started: float) -> Outcome:
        deployment = self.resolve(principal, body.get("model"))
        ticket = await self.limiter.admit(principal, deployment, estimate_tokens(kind, body, raw))
        visit = Visit(principal, kind, ticket, started, time.time())
        try:
            deployment, served = await self._serve(deployment, kind, body, raw, visit)
        except FoundryError as exc:
            exc.headers = as_text(ticket.headers) | exc.headers
            await self._finish(visit, deployment, "", exc.status, None, None)
            raise
        except asyncio.CancelledError:  # the client left (or a background response was cancelled)
            await self._finish(visit, deployment, "", 499, None, None)
            raise
        if served.stream is not None:
            ttft = time.perf_counter() - started
            chunks = self._metered(visit, served.stream, deployment, served.backend.provider, ttft)
            return Outcome(deployment, served.backend, chunks=chunks, headers=ticket.headers)
        assert served.reply is not None
        await self._finish(visit, deployment, served.backend.provider, 200, served.upstream_seconds, served.reply.usage)
        return Outcome(deployment, served.backend, body=served.reply.body, headers=ticket.headers)

    async def _serve(
        self, deployment: Deployment, kind: Kind, body: dict[str, Any], raw: bytes, visit: Visit
    ) -> tuple[Deployment, Served]:
        """Dispatch to the deployment, then to its fallbacks while the failure matches their conditions."""
        stream = bool(body.get("stream")) and kind != "embeddings"
        caller = visit.principal.project or ""
        tried = {deployment.name}
        while True:
            try:
                return deployment, await self.dispatcher.dispatch(deployment, kind, body, raw, stream, caller)
            except FoundryError as exc:
                self.metrics.error(deployment.name, "", kind, exc.code or exc.type)
                fallback = await self._fallback(deployment, kind, exc, tried, visit)
                if fallback is None:
                    raise
                deployment = fallback

    async def _fallback(
        self, deployment: Deployment, kind: Kind, exc: FoundryError, tried: set[str], visit: Visit
    ) -> Deployment | None:
        """The next fallback that fits the failure and whose own limits let the call in. The key's and
        project's limits counted the call at arrival; a fallback's deployment limits count it here."""
        condition = fallback_condition(exc)
        if condition is None or condition not in deployment.settings.fallback_on:
            return None
        for name in deployment.settings.fallbacks:
            fallback = self.deployments.get(name)
            if fallback is None or name in tried or (kind == "messages" and not self.native(fallback, "anthropic")):
                continue
            tried.add(name)
            try:
                ticket = await self.limiter.admit_fallback(fallback, visit.ticket.estimate)
            except RateLimited:
                continue
            visit.fallback_tickets += (ticket,)
            return fallback
        return None

    async def _metered(
        self, visit: Visit, stream: Stream, deployment: Deployment, provider: str, ttft: float
    ) -> AsyncGenerator[bytes, None]:
        """Relay the stream; the usage is recorded before the final [DONE] goes out, so a client that
        saw the whole answer is always counted."""
        status, ending = 499, b""
        try:
            async for chunk in stream.chunks:
                if chunk.endswith(sse.DONE):
                    chunk, ending = chunk[: -len(sse.DONE)], sse.DONE
                if chunk:
                    yield chunk
            status = 200
        except FoundryError as exc:
            status = exc.status
            self.metrics.error(deployment.name, provider, visit.kind, exc.code or exc.type)
            ending = stream_error(visit.kind, exc)
        finally:
            await stream.chunks.aclose()
            await self._finish(visit, deployment, provider, status, ttft, stream.usage, ttft=ttft)
        yield ending

    async def _finish(
        self,
        visit: Visit,
        deployment: Deployment,
        provider: str,
        status: int,
        upstream: float | None,
        usage: Usage | None,
        ttft: float | None = None,
    ) -> None:
        """Meter the call: metrics, the usage record, and settling its limits and budgets."""
        elapsed = time.perf_counter() - visit.started
        self.metrics.record(
            deployment.name, provider, visit.kind, status=status, duration=elapsed, upstream=upstream, usage=usage
        )
        cost = cost_usd(deployment.card, usage) if usage is not None else 0.0
        self.meter.record(
            UsageRecord(
                id=visit.ticket.id,
                ts=visit.arrived,
                project=visit.principal.project,
                key_id=visit.principal.key_id,
                deployment=deployment.name,
                backend=provider,
                kind=visit.kind,
                status=status,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                cached_tokens=usage.cached_tokens if usage else 0,
                reasoning_tokens=usage.reasoning_tokens if usage else 0,
                cost_usd=cost,
                latency_ms=elapsed * 1000,
                ttft_ms=None if ttft is None else ttft * 1000,
            )
        )
        used = usage.prompt_tokens + usage.completion_tokens if usage is not None else None
        self.limiter.settle(visit.ticket, used, cost)
        if visit.fallback_tickets:
            *failed, last = visit.fallback_tickets
            for ticket in failed:  # fallbacks that failed in turn keep their estimate, as a failed call does
                self.limiter.settle(ticket, None, 0.0)
            self.limiter.settle(last, used, 0.0)

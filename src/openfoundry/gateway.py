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
from openfoundry.errors import FoundryError, ModelNotFound, UpstreamUnavailable
from openfoundry.providers.base import Call, Kind, Provider, Stream, Usage
from openfoundry.routing.router import Router
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


class Gateway:
    def __init__(
        self,
        auth: Authenticator,
        deployments: Deployments,
        providers: Mapping[str, Provider],
        router: Router,
        metrics: Metrics,
    ) -> None:
        self.auth = auth
        self.deployments = deployments
        self.providers = providers
        self.router = router
        self.metrics = metrics

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return self.auth.authenticate(headers, admin_route=False)

    def resolve(self, principal: Principal, model: Any) -> Deployment:
        deployment = self.deployments.get(model) if isinstance(model, str) else None
        if deployment is None or not principal.may_use(deployment.name):
            raise ModelNotFound(f"The model '{model}' does not exist or you do not have access to it.", param="model")
        return deployment

    async def call(self, principal: Principal, kind: Kind, body: dict[str, Any], raw: bytes, started: float) -> Outcome:
        deployment = self.resolve(principal, body.get("model"))
        stream = bool(body.get("stream")) and kind != "embeddings"
        failure: FoundryError | None = None
        for backend in self.router.order(deployment):
            provider = self.providers[backend.provider]
            call = Call(kind, body, raw, backend.upstream_model, stream)
            try:
                if stream:
                    opened = await provider.stream(call)
                    upstream = time.perf_counter() - started
                    chunks = self._metered(opened, deployment, backend, kind, started, upstream)
                    return Outcome(deployment, backend, chunks=chunks)
                called = time.perf_counter()
                reply = await provider.complete(call)
            except UpstreamUnavailable as exc:
                self.metrics.error(deployment.name, backend.provider, kind, exc.code or exc.type)
                failure = exc
                continue
            except FoundryError as exc:
                self.metrics.error(deployment.name, backend.provider, kind, exc.code or exc.type)
                self._record(deployment, backend, kind, exc.status, started, None, None)
                raise
            upstream = time.perf_counter() - called
            self._record(deployment, backend, kind, 200, started, upstream, reply.usage)
            return Outcome(deployment, backend, body=reply.body)
        assert failure is not None
        raise failure

    async def _metered(
        self, stream: Stream, deployment: Deployment, backend: Backend, kind: Kind, started: float, upstream: float
    ) -> AsyncGenerator[bytes, None]:
        status = 499
        try:
            async for chunk in stream.chunks:
                yield chunk
            status = 200
        except FoundryError as exc:
            status = exc.status
            self.metrics.error(deployment.name, backend.provider, kind, exc.code or exc.type)
            yield sse.encode(exc.openai_body())
        finally:
            await stream.chunks.aclose()
            self._record(deployment, backend, kind, status, started, upstream, stream.usage)

    def _record(
        self,
        deployment: Deployment,
        backend: Backend,
        kind: Kind,
        status: int,
        started: float,
        upstream: float | None,
        usage: Usage | None,
    ) -> None:
        self.metrics.record(
            deployment.name,
            backend.provider,
            kind,
            status=status,
            duration=time.perf_counter() - started,
            upstream=upstream,
            usage=usage,
        )

"""GET /admin/engines (admin key only) and the engines' gauges in /metrics: the models we host ourselves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from openfoundry.deployments import Deployments
from openfoundry.engines.llamacpp import LlamaCppEngine
from openfoundry.engines.supervised import SupervisedServer
from openfoundry.providers.base import Provider
from openfoundry.telemetry.metrics import Metrics
from openfoundry.tenancy.auth import Authenticator

_STATES = {"loading": 0, "ready": 1, "failed": 2}


class Engine(Protocol):
    """A provider we run ourselves: it can say how it is doing."""

    name: str

    def status(self) -> dict[str, Any]: ...


def engines_of(providers: Mapping[str, Provider]) -> list[Engine]:
    found: list[Any] = [p for p in providers.values() if isinstance(p, LlamaCppEngine | SupervisedServer)]
    return found


def add_routes(
    app: FastAPI, auth: Authenticator, providers: Mapping[str, Provider], registry: Deployments, metrics: Metrics
) -> None:
    engines = engines_of(providers)

    def describe(engine: Engine) -> dict[str, Any]:
        served = [d for d in registry if any(b.provider == engine.name for b in d.backends)]
        models = sorted({d.card.id for d in served})
        return {"model": models[0] if len(models) == 1 else models, "deployments": [d.name for d in served]} | (
            engine.status()
        )

    @app.get("/admin/engines", tags=["admin"])
    async def list_engines(request: Request) -> dict[str, Any]:
        """Each embedded engine: its model, state (loading/ready/failed), replicas, queue depth, tokens/s."""
        auth.authenticate(request.headers, admin_route=True)
        return {"object": "list", "data": [describe(engine) for engine in engines]}

    if engines:
        metrics.registry.register(_EngineCollector(lambda: (engine.status() for engine in engines)))


class _EngineCollector(Collector):
    """The figures of GET /admin/engines, read at scrape time."""

    def __init__(self, source: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        labels = ["provider"]
        state = GaugeMetricFamily("foundry_engine_state", "0 loading, 1 ready, 2 failed", labels=labels)
        ready = GaugeMetricFamily("foundry_engine_replicas_ready", "Worker processes ready", labels=labels)
        replicas = GaugeMetricFamily("foundry_engine_replicas", "Worker processes configured", labels=labels)
        restarts = GaugeMetricFamily("foundry_engine_restarts", "Worker processes restarted", labels=labels)
        running = GaugeMetricFamily("foundry_engine_running", "Calls holding a slot", labels=labels)
        queued = GaugeMetricFamily("foundry_engine_queue_depth", "Calls waiting for a slot", labels=labels)
        rejected = GaugeMetricFamily(
            "foundry_engine_rejected", "Calls refused with 429 (queue full or timed out)", labels=labels
        )
        rate = GaugeMetricFamily("foundry_engine_tokens_per_second", "Decode speed over the last minute", labels=labels)
        tokens = GaugeMetricFamily("foundry_engine_completion_tokens", "Tokens generated", labels=labels)
        for status in self._source():
            key = [status["provider"]]
            state.add_metric(key, _STATES.get(status["state"], 0))
            ready.add_metric(key, status["replicas_ready"])
            replicas.add_metric(key, status["replicas_wanted"])
            restarts.add_metric(key, sum(r["restarts"] for r in status["replicas"]))
            for family, field in ((running, "running"), (queued, "queue_depth"), (rejected, "rejected")):
                if status.get(field) is not None:  # the embedded engine's own queue; not a supervised server's
                    family.add_metric(key, status[field])
            if status.get("completion_tokens") is not None:
                tokens.add_metric(key, status["completion_tokens"])
            if status.get("tokens_per_second") is not None:
                rate.add_metric(key, status["tokens_per_second"])
        yield from (state, ready, replicas, restarts, running, queued, rejected, rate, tokens)

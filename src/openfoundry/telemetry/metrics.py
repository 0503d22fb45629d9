"""Prometheus metrics, labelled by deployment and provider, with label children cached per pair."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from openfoundry.providers.base import Usage

if TYPE_CHECKING:
    from openfoundry.deployments import Deployment
    from openfoundry.routing.router import BackendState

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


@dataclass(slots=True)
class _Series:
    """The label children of one (deployment, provider, kind), resolved once."""

    duration: Histogram
    upstream: Histogram
    prompt: Counter
    completion: Counter
    cached: Counter
    reasoning: Counter


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("deployment", "provider", "kind")
        self.requests = Counter(
            "foundry_requests", "Inference requests answered", (*labels, "status"), registry=self.registry
        )
        self.errors = Counter(
            "foundry_errors", "Inference requests that ended in an error", (*labels, "code"), registry=self.registry
        )
        self.duration = Histogram(
            "foundry_request_duration_seconds",
            "Time from request to the last byte of the answer",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream = Histogram(
            "foundry_upstream_duration_seconds",
            "Time the upstream took to start answering",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter("foundry_tokens", "Tokens processed", (*labels, "type"), registry=self.registry)
        self.limit_store_failures = Counter(
            "foundry_limit_store_failures",
            "Limit checks the shared store (Redis) could not answer",
            registry=self.registry,
        )
        self._series: dict[tuple[str, str, str], _Series] = {}

    def _get(self, deployment: str, provider: str, kind: str) -> _Series:
        key = (deployment, provider, kind)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(
                self.duration.labels(*key),
                self.upstream.labels(*key),
                self.tokens.labels(*key, "prompt"),
                self.tokens.labels(*key, "completion"),
                self.tokens.labels(*key, "cached"),
                self.tokens.labels(*key, "reasoning"),
            )
        return series

    def record(
        self,
        deployment: str,
        provider: str,
        kind: str,
        *,
        status: int,
        duration: float,
        upstream: float | None,
        usage: Usage | None,
    ) -> None:
        series = self._get(deployment, provider, kind)
        self.requests.labels(deployment, provider, kind, str(status)).inc()
        series.duration.observe(duration)
        if upstream is not None:
            series.upstream.observe(upstream)
        if usage is not None:
            series.prompt.inc(usage.prompt_tokens)
            series.completion.inc(usage.completion_tokens)
            series.cached.inc(usage.cached_tokens)
            series.reasoning.inc(usage.reasoning_tokens)

    def error(self, deployment: str, provider: str, kind: str, code: str) -> None:
        self.errors.labels(deployment, provider, kind, code).inc()

    def watch_backends(self, source: Callable[[], Iterable[tuple[Deployment, list[BackendState]]]]) -> None:
        """Export each backend's breaker state, in-flight calls and latency, read at scrape time."""
        self.registry.register(_BackendCollector(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)


_BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class _BackendCollector(Collector):
    def __init__(self, source: Callable[[], Iterable[tuple[Deployment, list[BackendState]]]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        labels = ["deployment", "provider", "upstream_model"]
        breaker = GaugeMetricFamily("foundry_backend_breaker_state", "0 closed, 1 half-open, 2 open", labels=labels)
        inflight = GaugeMetricFamily("foundry_backend_in_flight", "Calls in flight", labels=labels)
        latency = GaugeMetricFamily("foundry_backend_latency_seconds", "EWMA of recent call latency", labels=labels)
        errors = GaugeMetricFamily("foundry_backend_error_rate", "Failed share of recent calls", labels=labels)
        for deployment, states in self._source():
            for state in states:
                key = [deployment.name, state.backend.provider, state.backend.upstream_model]
                breaker.add_metric(key, _BREAKER_VALUES[state.breaker.state])
                inflight.add_metric(key, state.inflight)
                errors.add_metric(key, state.breaker.error_rate)
                if state.latency is not None:
                    latency.add_metric(key, state.latency)
        yield from (breaker, inflight, latency, errors)

"""Health, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import json
import urllib.request

import openai
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import ADMIN_KEY, Server


def fetch(server: Server, path: str) -> bytes:
    with urllib.request.urlopen(server.url + path, timeout=10) as answer:
        return bytes(answer.read())


def test_health_and_readiness(server: Server) -> None:
    assert json.loads(fetch(server, "/healthz")) == {"status": "ok"}
    assert json.loads(fetch(server, "/readyz")) == {"status": "ready"}


def test_metrics_count_requests_tokens_and_latency_per_deployment(server: Server) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    client.chat.completions.create(model="grok", messages=[{"role": "user", "content": "count my tokens"}])
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(fetch(server, "/metrics").decode())
        for sample in family.samples
    }
    labels = (("deployment", "grok"), ("kind", "chat"), ("provider", "xai"))
    assert samples[("foundry_requests_total", (*labels, ("status", "200")))] >= 1
    assert samples[("foundry_tokens_total", (*labels, ("type", "prompt")))] >= 3
    assert samples[("foundry_request_duration_seconds_count", labels)] >= 1
    assert samples[("foundry_upstream_duration_seconds_count", labels)] >= 1
    assert samples[("foundry_upstream_duration_seconds_sum", labels)] > 0


def test_openapi_describes_every_surface(server: Server) -> None:
    paths = json.loads(fetch(server, "/openapi.json"))["paths"]
    for path in (
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/admin/deployments",
        "/admin/catalog",
    ):
        assert path in paths
    assert "requestBody" in paths["/admin/deployments"]["post"]

"""Backend order: priority first, then each strategy; open breakers and resting hosts go last."""

from __future__ import annotations

import random
from collections import Counter

from openfoundry.catalog import Catalog
from openfoundry.config import DeploymentSettings, ProviderSettings
from openfoundry.deployments import Deployment, build_deployment
from openfoundry.routing.router import Router

CATALOG = Catalog.load()
PROVIDERS = {name: ProviderSettings(type="openai-compatible", base_url="http://127.0.0.1:1/v1") for name in "abcd"}


def deployment(strategy: str, *backends: dict[str, object]) -> Deployment:
    spec = DeploymentSettings.model_validate(
        {
            "model": "openai/gpt-4.1-mini",
            "strategy": strategy,
            "backends": [{"upstream_model": "m", **b} for b in backends],
        }
    )
    return build_deployment("d", spec, CATALOG, PROVIDERS, "config")


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def names(router: Router, target: Deployment) -> list[str]:
    return [state.backend.provider for state in router.order(target)]


def test_priority_comes_before_weight() -> None:
    target = deployment("weighted", {"provider": "a", "priority": 2, "weight": 100}, {"provider": "b"})
    router = Router(random.Random(1))
    assert all(names(router, target)[0] == "b" for _ in range(50))


def test_weights_split_traffic_within_a_priority() -> None:
    target = deployment("weighted", {"provider": "a", "weight": 3}, {"provider": "b", "weight": 1})
    router = Router(random.Random(7))
    firsts = Counter(names(router, target)[0] for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80


def test_least_inflight_prefers_the_idle_backend() -> None:
    target = deployment("least-inflight", {"provider": "a"}, {"provider": "b"}, {"provider": "c"})
    router = Router(random.Random(3))
    states = {s.backend.provider: s for s in router.states(target)}
    states["a"].inflight, states["b"].inflight, states["c"].inflight = 5, 0, 2
    assert names(router, target) == ["b", "c", "a"]


def test_latency_prefers_the_fastest_and_tries_unknown_ones_first() -> None:
    target = deployment("latency", {"provider": "a"}, {"provider": "b"}, {"provider": "c"})
    router = Router()
    states = {s.backend.provider: s for s in router.states(target)}
    states["a"].observe(0.300)
    states["b"].observe(0.050)
    assert names(router, target) == ["c", "b", "a"]
    for _ in range(30):
        states["b"].observe(0.900)  # b got slow: the EWMA follows
    assert names(router, target)[1:] == ["a", "b"]


def test_cost_prefers_the_cheapest_price() -> None:
    target = deployment("cost", {"provider": "a", "price": 9.0}, {"provider": "b"}, {"provider": "c", "price": 0.5})
    card_price = (CATALOG.get("openai/gpt-4.1-mini").pricing.input or 0) + (
        CATALOG.get("openai/gpt-4.1-mini").pricing.output or 0
    )  # type: ignore[union-attr]
    assert 0.5 < card_price < 9.0
    assert names(Router(), target) == ["c", "b", "a"]


def test_open_breakers_and_resting_hosts_go_last() -> None:
    clock = Clock()
    target = deployment("weighted", {"provider": "a"}, {"provider": "b"}, {"provider": "c"})
    router = Router(random.Random(5), clock=clock)
    states = {s.backend.provider: s for s in router.states(target)}
    for _ in range(5):
        states["a"].breaker.failure()
    states["b"].resting_until = clock.now + 30
    assert names(router, target)[0] == "c"
    assert set(names(router, target)[1:]) == {"a", "b"}

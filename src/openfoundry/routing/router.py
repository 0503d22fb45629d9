"""The order in which a deployment's backends are tried: lower priority first, weighted within one."""

from __future__ import annotations

import random

from openfoundry.deployments import Backend, Deployment


class Router:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def order(self, deployment: Deployment) -> list[Backend]:
        backends = deployment.backends
        if len(backends) == 1:
            return [backends[0]]
        ordered: list[Backend] = []
        for priority in sorted({b.priority for b in backends}):
            group = [b for b in backends if b.priority == priority]
            while group:
                pick = self._rng.choices(group, weights=[b.weight for b in group])[0]
                ordered.append(pick)
                group.remove(pick)
        return ordered

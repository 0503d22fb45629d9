"""Deployments: named, routable uses of a catalog model, backed by one or more provider hosts."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from openfoundry.catalog import Catalog, ModelCard
from openfoundry.config import BackendSettings, DeploymentSettings, ProviderSettings
from openfoundry.engines.models import served_card
from openfoundry.errors import Conflict, InvalidRequest, NotFound
from openfoundry.store.db import Database

log = logging.getLogger("openfoundry")
Source = Literal["config", "api", "auto"]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


@dataclass(frozen=True, slots=True)
class Backend:
    provider: str
    upstream_model: str
    priority: int = 1
    weight: float = 1.0
    price: float | None = None
    """USD per million tokens (input + output) on this host; None: the catalog's."""


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    card: ModelCard
    backends: tuple[Backend, ...]
    settings: DeploymentSettings
    """Routing policy (strategy, retry, breaker, fallbacks, hedging) and limits, as configured."""
    source: Source

    def spec(self) -> dict[str, Any]:
        """The deployment as the admin API and the database hold it, upstream names resolved."""
        spec = self.settings.model_dump(mode="json")
        spec["backends"] = [
            {"provider": b.provider, "upstream_model": b.upstream_model, "priority": b.priority, "weight": b.weight}
            | ({"price": b.price} if b.price is not None else {})
            for b in self.backends
        ]
        return spec

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, **self.spec()}


def build_deployment(
    name: str,
    raw: Mapping[str, Any] | DeploymentSettings,
    catalog: Catalog,
    providers: Mapping[str, ProviderSettings],
    source: Source,
) -> Deployment:
    """Check a deployment against the catalog and the configured providers; InvalidRequest says why not."""
    try:
        settings = raw if isinstance(raw, DeploymentSettings) else DeploymentSettings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidRequest(f"deployment {name!r}: {where}: {error['msg']}", param=where) from exc
    card = catalog.get(settings.model)
    if card is None:
        raise InvalidRequest(
            f"deployment {name!r}: model {settings.model!r} is not in the catalog (see GET /admin/catalog)",
            param="model",
            code="model_not_in_catalog",
        )
    backends = []
    for index, backend in enumerate(settings.backends):
        provider = providers.get(backend.provider)
        if provider is None:
            raise InvalidRequest(
                f"deployment {name!r}: backends[{index}].provider {backend.provider!r} is not configured "
                f"(configured: {', '.join(sorted(providers)) or 'none'})",
                param=f"backends.{index}.provider",
                code="unknown_provider",
            )
        upstream = backend.upstream_model or card.hosts.get(provider.type)
        if upstream is None and provider.launch is not None:  # a server we start serves one model, by its name
            upstream = provider.launch.served_model_name or provider.launch.model
        if upstream is None:
            raise InvalidRequest(
                f"deployment {name!r}: the catalog lists no {provider.type!r} name for {card.id}; "
                f"set backends[{index}].upstream_model",
                param=f"backends.{index}.upstream_model",
            )
        backends.append(Backend(backend.provider, upstream, backend.priority, backend.weight, backend.price))
    if name in settings.fallbacks:
        raise InvalidRequest(f"deployment {name!r}: it cannot be its own fallback", param="fallbacks")
    return Deployment(name, card, tuple(backends), settings, source)


def check_fallbacks(deployment: Deployment, exists: Callable[[str], bool]) -> None:
    for index, fallback in enumerate(deployment.settings.fallbacks):
        if not exists(fallback):
            raise InvalidRequest(
                f"deployment {deployment.name!r}: fallback {fallback!r} is not a deployment",
                param=f"fallbacks.{index}",
                code="unknown_deployment",
            )


def zero_config_deployments(catalog: Catalog, providers: Mapping[str, ProviderSettings]) -> list[Deployment]:
    """Every catalog model a credentialed provider hosts, deployed under its own name (an engine: its model)."""
    found: dict[str, Deployment] = {}
    for card in catalog:
        for name, provider in sorted(providers.items()):
            upstream = card.hosts.get(provider.type)
            if provider.type == "llamacpp" and card.id != served_card(provider):
                continue  # an engine serves one model file, not every card it could host
            if provider.launch is not None and upstream != (provider.launch.served_model_name or provider.launch.model):
                continue  # a supervised server serves one model, under its served name
            if upstream is not None and card.short_name not in found:
                settings = DeploymentSettings(model=card.id, backends=[BackendSettings(provider=name)])
                found[card.short_name] = Deployment(card.short_name, card, (Backend(name, upstream),), settings, "auto")
    return list(found.values())


class Deployments:
    """The deployments in force, read from memory on the hot path."""

    def __init__(self) -> None:
        self._by_name: dict[str, Deployment] = {}

    def get(self, name: str) -> Deployment | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Deployment]:
        return iter(sorted(self._by_name.values(), key=lambda d: d.name))

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def replace(self, deployments: list[Deployment]) -> None:
        self._by_name = {d.name: d for d in deployments}

    def put(self, deployment: Deployment) -> None:
        self._by_name = {**self._by_name, deployment.name: deployment}

    def remove(self, name: str) -> None:
        self._by_name = {k: v for k, v in self._by_name.items() if k != name}


class DeploymentManager:
    """Deployments from the config file and the database, kept in the in-memory registry."""

    def __init__(
        self,
        registry: Deployments,
        db: Database,
        catalog: Catalog,
        providers: Mapping[str, ProviderSettings],
        fixed: list[Deployment],
    ) -> None:
        self.registry = registry
        self.db = db
        self.catalog = catalog
        self.providers = providers
        self.fixed = {d.name: d for d in fixed}

    async def load(self) -> list[str]:
        """Fill the registry; returns a problem line for each stored deployment that no longer checks."""
        found = dict(self.fixed)
        problems = []
        for name, spec in await self.db.list_deployments():
            if name in found:
                problems.append(f"stored deployment {name!r} is shadowed by the config file")
                continue
            try:
                found[name] = build_deployment(name, spec, self.catalog, self.providers, "api")
            except InvalidRequest as exc:
                problems.append(f"stored deployment skipped: {exc.message}")
        self.registry.replace(list(found.values()))
        return problems

    async def watch(self, interval: float = 0.5) -> None:
        """Reload when another process changed the stored deployments (checked every `interval` s)."""
        seen = await self.db.deployments_version()
        while True:
            await asyncio.sleep(interval)
            try:
                version = await self.db.deployments_version()
                if version != seen:
                    for problem in await self.load():
                        log.warning(problem)
                    seen = version
            except Exception:
                log.exception("reloading deployments failed; keeping the current set")

    async def create(self, name: str, raw: Mapping[str, Any]) -> Deployment:
        if not _NAME.fullmatch(name):
            raise InvalidRequest(
                "deployment name must be 1-200 letters, digits, '.', '_', '-' or ':', starting with a letter or digit",
                param="name",
            )
        deployment = build_deployment(name, raw, self.catalog, self.providers, "api")
        check_fallbacks(deployment, lambda other: other in self.registry)
        if name in self.registry or not await self.db.insert_deployment(name, deployment.spec()):
            raise Conflict(f"deployment {name!r} already exists", code="deployment_exists")
        self.registry.put(deployment)
        return deployment

    async def delete(self, name: str) -> None:
        deployment = self.registry.get(name)
        if deployment is None:
            raise NotFound(f"deployment {name!r} does not exist", code="deployment_not_found")
        if deployment.source != "api":
            raise Conflict(f"deployment {name!r} comes from the config file; remove it there", code="read_only")
        await self.db.delete_deployment(name)
        self.registry.remove(name)

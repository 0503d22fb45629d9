"""create_app(settings): wires the parts together; no logic of its own."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from openfoundry import __version__
from openfoundry.agents.embedding import Embedder
from openfoundry.agents.ingest import Ingestor
from openfoundry.agents.runner import Runner
from openfoundry.agents.search import Searcher
from openfoundry.agents.tools.base import ServerTool, ToolContext, ToolFactory
from openfoundry.agents.tools.file_search import FileSearchFactory
from openfoundry.agents.tools.openapi import OpenApiTools
from openfoundry.api import admin, anthropic, azure, health, openai, tenants, usage
from openfoundry.api import connectors as connectors_api
from openfoundry.api import conversations as conversations_api
from openfoundry.api import engines as engines_api
from openfoundry.api import files as files_api
from openfoundry.api import responses as responses_api
from openfoundry.api import vector_store_batches as vector_store_batches_api
from openfoundry.api import vector_stores as vector_stores_api
from openfoundry.api.http import install_error_handlers
from openfoundry.catalog import Catalog
from openfoundry.config import ConfigError, Settings, load_settings
from openfoundry.deployments import (
    Deployment,
    DeploymentManager,
    Deployments,
    build_deployment,
    check_fallbacks,
    zero_config_deployments,
)
from openfoundry.errors import InvalidRequest
from openfoundry.gateway import Gateway
from openfoundry.limits.limiter import Limiter
from openfoundry.limits.redis import RedisStore
from openfoundry.limits.store import LimitStore, MemoryStore
from openfoundry.metering.meter import Meter
from openfoundry.metering.spool import spool_folder
from openfoundry.providers.registry import build_provider
from openfoundry.routing.dispatch import Dispatcher
from openfoundry.routing.router import Router
from openfoundry.store.connectors import ConnectorStore
from openfoundry.store.conversations import ConversationStore
from openfoundry.store.db import Database
from openfoundry.store.files import FileStore
from openfoundry.store.responses import ResponseStore
from openfoundry.store.tenancy import TenancyStore
from openfoundry.store.usage import UsageStore
from openfoundry.store.vector_stores import VectorStores
from openfoundry.telemetry.metrics import Metrics
from openfoundry.tenancy.auth import Authenticator
from openfoundry.tenancy.keys import KeyRing

if TYPE_CHECKING:
    from openfoundry.api.xai_grpc import XaiGrpcServer

log = logging.getLogger("openfoundry")

YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations between young collections (Python's default is 700). The objects of calls in flight come and
go by the thousand, so at 700 the collector ran every few calls and took ~10% of the CPU under load; at
10,000 it runs every few thousand calls and takes under 1%."""


def configured_deployments(settings: Settings, catalog: Catalog) -> list[Deployment]:
    """The config file's deployments (or the zero-config ones); a bad one is a ConfigError."""
    if settings.zero_config and not settings.deployments:
        return zero_config_deployments(catalog, settings.providers)
    found = []
    for name, spec in settings.deployments.items():
        try:
            deployment = build_deployment(name, spec, catalog, settings.providers, "config")
            check_fallbacks(deployment, lambda other: other in settings.deployments)
            found.append(deployment)
        except InvalidRequest as exc:
            raise ConfigError(f"invalid configuration:\n  deployments.{name}: {exc.message}") from exc
    return found


async def _mcp_tool(spec: dict[str, Any], context: ToolContext) -> ServerTool:
    """The `mcp` tool factory, loaded on first use: the MCP SDK costs ~25 MB of memory."""
    from openfoundry.agents.tools.mcp import mcp_tool

    return await mcp_tool(spec, context)


def app_from_environment() -> FastAPI:
    """The app of one worker process of `foundry serve --workers N` (the CLI has put its options in
    the environment and checked the configuration already)."""
    return create_app(load_settings())


def create_app(settings: Settings, catalog: Catalog | None = None) -> FastAPI:
    catalog = catalog or Catalog.load()
    providers = {name: build_provider(name, spec) for name, spec in settings.providers.items()}
    db = Database(settings.storage.database)
    registry = Deployments()
    manager = DeploymentManager(registry, db, catalog, settings.providers, configured_deployments(settings, catalog))
    metrics = Metrics()
    tenancy = TenancyStore(db)
    keys = KeyRing(tenancy)
    auth = Authenticator(settings.server.admin_key.get_secret_value() if settings.server.admin_key else None, keys)
    router = Router()
    limit_store: LimitStore = (
        RedisStore(settings.storage.redis, on_failure=metrics.limit_store_failures.inc)
        if settings.storage.redis
        else MemoryStore()
    )
    usage_store = UsageStore(db)
    limiter = Limiter(
        limit_store,
        keys,
        usage_store.spent_since,
        settings.storage.redis_policy == "fail-open",
        metrics.limit_store_failures.inc,
    )
    meter = Meter(usage_store, spool_folder(settings.storage.spool_dir, settings.storage.database))
    gateway = Gateway(auth, registry, limiter, Dispatcher(router, providers), meter, metrics)
    grpc_port = settings.server.grpc_port
    xai_grpc: XaiGrpcServer | None = None
    if grpc_port:
        from openfoundry.api.xai_grpc import XaiGrpcServer  # gRPC and xai-sdk: ~25 MB, only when served

        xai_grpc = XaiGrpcServer(gateway, settings.server.host, grpc_port)
    file_store, vector_stores = FileStore(db), VectorStores(db)
    embedder = Embedder(gateway, settings.agents)
    ingestor = Ingestor(file_store, vector_stores, embedder)
    searcher = Searcher(vector_stores, embedder)
    connector_store = ConnectorStore(db)
    factories: dict[str, ToolFactory] = {
        "mcp": _mcp_tool,
        "openapi": OpenApiTools(connector_store),
        "file_search": FileSearchFactory(searcher),
    }
    response_store, conversation_store = ResponseStore(db), ConversationStore(db)
    runner = Runner(gateway, response_store, conversation_store, settings.agents, factories)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await db.migrate()
        for problem in await manager.load():
            log.warning(problem)
        await keys.refresh()
        deployments_watcher = asyncio.create_task(manager.watch())
        for provider in providers.values():
            await provider.start()
        await meter.start()
        watcher = asyncio.create_task(keys.watch())
        if xai_grpc is not None:
            await xai_grpc.start()
        # Everything made at start lives as long as the process: keep it out of the collector's full
        # passes, which otherwise took a third of the CPU under load.
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD)
        try:
            yield
        finally:
            if xai_grpc is not None:
                await xai_grpc.stop()
            watcher.cancel()
            deployments_watcher.cancel()
            await runner.close()
            await ingestor.close()
            await limit_store.close()
            await meter.close()
            for provider in providers.values():
                await provider.close()
            await db.close()

    app = FastAPI(title="Openfoundry", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    openai.add_routes(app, gateway, settings.server.max_body_bytes)
    azure.add_routes(app, gateway, settings.server.max_body_bytes)
    anthropic.add_routes(app, gateway, settings.server.max_body_bytes)
    admin.add_routes(app, auth, catalog, manager, router)
    tenants.add_routes(app, auth, tenancy, keys, registry)
    usage.add_routes(app, auth, usage_store)
    engines_api.add_routes(app, auth, providers, registry, metrics)
    responses_api.add_routes(app, gateway, runner, response_store, settings.server.max_body_bytes)
    conversations_api.add_routes(app, gateway, conversation_store, settings.server.max_body_bytes)
    connectors_api.add_routes(app, auth, connector_store)
    files_api.add_routes(app, gateway, file_store, settings.agents.max_file_bytes)
    vector_stores_api.add_routes(app, gateway, file_store, vector_stores, ingestor, searcher)
    vector_store_batches_api.add_routes(app, gateway, file_store, vector_stores, ingestor)
    metrics.watch_backends(lambda: ((d, router.states(d)) for d in registry))
    health.add_routes(app, db, metrics)
    return app

"""The admin API under /admin: catalog and deployments (admin key only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import Field

from openfoundry.catalog import Catalog
from openfoundry.config import DeploymentSettings
from openfoundry.deployments import DeploymentManager
from openfoundry.errors import NotFound
from openfoundry.routing.router import Router
from openfoundry.tenancy.auth import Authenticator


class DeploymentIn(DeploymentSettings):
    name: str = Field(description="What clients send as `model`.")


def add_routes(app: FastAPI, auth: Authenticator, catalog: Catalog, manager: DeploymentManager, router: Router) -> None:
    def require_admin(request: Request) -> None:
        auth.authenticate(request.headers, admin_route=True)

    admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

    @admin.get("/catalog")
    async def list_catalog() -> dict[str, Any]:
        return {"object": "list", "data": [card.model_dump(mode="json") for card in catalog]}

    @admin.get("/catalog/{model_id:path}")
    async def get_card(model_id: str) -> dict[str, Any]:
        card = catalog.get(model_id)
        if card is None:
            raise NotFound(f"model {model_id!r} is not in the catalog", code="model_not_in_catalog")
        return card.model_dump(mode="json")

    @admin.get("/deployments")
    async def list_deployments() -> dict[str, Any]:
        return {"object": "list", "data": [d.public() for d in manager.registry]}

    @admin.post("/deployments", status_code=201)
    async def create_deployment(spec: DeploymentIn) -> dict[str, Any]:
        raw = spec.model_dump(exclude={"name"}, exclude_unset=True)
        return (await manager.create(spec.name, raw)).public()

    @admin.get("/deployments/{name}")
    async def get_deployment(name: str) -> dict[str, Any]:
        deployment = manager.registry.get(name)
        if deployment is None:
            raise NotFound(f"deployment {name!r} does not exist", code="deployment_not_found")
        return deployment.public() | {"backend_status": router.snapshot(deployment)}

    @admin.delete("/deployments/{name}")
    async def delete_deployment(name: str) -> dict[str, Any]:
        await manager.delete(name)
        return {"name": name, "deleted": True}

    app.include_router(admin)

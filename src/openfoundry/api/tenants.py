"""Admin API for tenancy: projects and their API keys (admin key only)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from openfoundry.config import LimitSettings
from openfoundry.deployments import Deployments
from openfoundry.errors import Conflict, InvalidRequest, NotFound
from openfoundry.store.tenancy import TenancyStore
from openfoundry.tenancy.auth import Authenticator
from openfoundry.tenancy.keys import KeyRing, digest, new_key

Period = Literal["day", "month"]
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectIn(Strict):
    name: str = Field(pattern=NAME)
    limits: LimitSettings | None = None
    budget_usd: float | None = Field(None, ge=0)
    budget_period: Period | None = None


class ProjectPatch(Strict):
    limits: LimitSettings | None = None
    budget_usd: float | None = Field(None, ge=0)
    budget_period: Period | None = None


class KeyIn(Strict):
    project: str
    name: str = Field(min_length=1, max_length=200)
    deployments: list[str] | None = None
    """Deployments this key may use; all when absent."""
    limits: LimitSettings | None = None
    budget_usd: float | None = Field(None, ge=0)
    budget_period: Period | None = None
    expires_at: dt.datetime | None = None


def _columns(model: BaseModel, *, only_set: bool = False, exclude: set[str] | None = None) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_unset=only_set, exclude=exclude)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items() if k != "hash"}


def add_routes(app: FastAPI, auth: Authenticator, store: TenancyStore, keys: KeyRing, deployments: Deployments) -> None:
    def require_admin(request: Request) -> None:
        auth.authenticate(request.headers, admin_route=True)

    admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

    @admin.post("/projects", status_code=201)
    async def create_project(project: ProjectIn) -> dict[str, Any]:
        if not await store.create_project(project.name, _columns(project, exclude={"name"})):
            raise Conflict(f"project {project.name!r} already exists", code="project_exists")
        return _public((await store.projects(project.name))[0])

    @admin.get("/projects")
    async def list_projects() -> dict[str, Any]:
        return {"object": "list", "data": [_public(row) for row in await store.projects()]}

    @admin.patch("/projects/{name}")
    async def update_project(name: str, patch: ProjectPatch) -> dict[str, Any]:
        if not await store.update_project(name, _columns(patch, only_set=True)):
            raise NotFound(f"project {name!r} does not exist", code="project_not_found")
        return _public((await store.projects(name))[0])

    @admin.post("/keys", status_code=201)
    async def create_key(spec: KeyIn) -> dict[str, Any]:
        if not await store.projects(spec.project):
            raise InvalidRequest(f"project {spec.project!r} does not exist", param="project", code="project_not_found")
        unknown = sorted(set(spec.deployments or ()) - {d.name for d in deployments})
        if unknown:
            raise InvalidRequest(
                f"no deployment named {', '.join(unknown)}", param="deployments", code="unknown_deployment"
            )
        key_id, secret, prefix = new_key()
        fields = _columns(spec, exclude={"expires_at"}) | {"id": key_id, "prefix": prefix, "hash": digest(secret)}
        if spec.expires_at is not None:
            fields["expires_at"] = spec.expires_at if spec.expires_at.tzinfo else spec.expires_at.replace(tzinfo=dt.UTC)
        await store.create_key(fields)
        await keys.refresh()
        created = next(row for row in await store.keys(spec.project) if row["id"] == key_id)
        return _public(created) | {"key": secret}

    @admin.get("/keys")
    async def list_keys(project: str | None = None) -> dict[str, Any]:
        return {"object": "list", "data": [_public(row) for row in await store.keys(project)]}

    @admin.delete("/keys/{key_id}")
    async def revoke_key(key_id: str) -> dict[str, Any]:
        if not await store.revoke_key(key_id):
            raise NotFound(f"key {key_id!r} does not exist or is already revoked", code="key_not_found")
        await keys.refresh()
        return {"id": key_id, "revoked": True}

    app.include_router(admin)

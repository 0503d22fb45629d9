"""Admin API for OpenAPI connectors (admin key only): register a spec with its credential, list, show,
delete. The credential is stored so calls can use it, and never shown again."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from openfoundry.agents.connectors import ApiSpec, load_document, parse_spec
from openfoundry.agents.tools.naming import function_name
from openfoundry.errors import Conflict, NotFound
from openfoundry.store.connectors import ConnectorStore
from openfoundry.tenancy.auth import Authenticator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NoAuth(Strict):
    type: Literal["none"]


class ApiKeyAuth(Strict):
    type: Literal["api_key"]
    name: str = Field(min_length=1, max_length=200)
    """The header or query parameter that carries the key."""
    location: Literal["header", "query"] = Field("header", alias="in")
    value: SecretStr = Field(min_length=1)


class BearerAuth(Strict):
    type: Literal["bearer"]
    token: SecretStr = Field(min_length=1)


Auth = Annotated[NoAuth | ApiKeyAuth | BearerAuth, Field(discriminator="type")]


class ConnectorIn(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    spec: dict[str, Any] | str
    """An OpenAPI 3.0/3.1 document, as an object or as JSON or YAML text."""
    base_url: str | None = None
    """Where the API is; the spec's `servers[0].url` when absent."""
    auth: Auth = Field(default_factory=lambda: NoAuth(type="none"))


def _stored_auth(auth: NoAuth | ApiKeyAuth | BearerAuth) -> dict[str, Any]:
    if isinstance(auth, ApiKeyAuth):
        return {"type": "api_key", "name": auth.name, "in": auth.location, "value": auth.value.get_secret_value()}
    if isinstance(auth, BearerAuth):
        return {"type": "bearer", "token": auth.token.get_secret_value()}
    return {"type": "none"}


def _shown_auth(auth: dict[str, Any]) -> dict[str, Any]:
    """The auth without its secret: the type, and for an API key where it goes."""
    return {key: auth[key] for key in ("type", "name", "in") if key in auth}


def _summary(row: dict[str, Any], api: ApiSpec) -> dict[str, Any]:
    return {
        "object": "connector",
        "name": row["name"],
        "title": api.title,
        "server_url": api.server_url,
        "auth": _shown_auth(row["auth"]),
        "operation_count": len(api.operations),
        "created_at": _timestamp(row["created_at"]),
    }


def _detail(row: dict[str, Any], api: ApiSpec) -> dict[str, Any]:
    operations = [
        {
            "name": operation.name,
            "function": function_name(row["name"], operation.name),
            "method": operation.method,
            "path": operation.path,
            "description": operation.description,
        }
        for operation in api.operations
    ]
    return _summary(row, api) | {"operations": operations, "skipped": api.skipped}


def _timestamp(value: dt.datetime) -> int:
    return int((value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp())


def add_routes(app: FastAPI, auth: Authenticator, store: ConnectorStore) -> None:
    def require_admin(request: Request) -> None:
        auth.authenticate(request.headers, admin_route=True)

    admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

    async def stored(name: str) -> tuple[dict[str, Any], ApiSpec]:
        row = await store.get(name)
        if row is None:
            raise NotFound(f"connector {name!r} does not exist", code="connector_not_found")
        return row, parse_spec(row["spec"], row["base_url"])

    @admin.post("/connectors", status_code=201)
    async def create_connector(connector: ConnectorIn) -> dict[str, Any]:
        document = load_document(connector.spec)
        parse_spec(document, connector.base_url)
        if not await store.create(connector.name, document, connector.base_url, _stored_auth(connector.auth)):
            raise Conflict(f"connector {connector.name!r} already exists", code="connector_exists")
        return _detail(*await stored(connector.name))

    @admin.get("/connectors")
    async def list_connectors() -> dict[str, Any]:
        rows = await store.all()
        return {"object": "list", "data": [_summary(row, parse_spec(row["spec"], row["base_url"])) for row in rows]}

    @admin.get("/connectors/{name}")
    async def get_connector(name: str) -> dict[str, Any]:
        return _detail(*await stored(name))

    @admin.delete("/connectors/{name}")
    async def delete_connector(name: str) -> dict[str, Any]:
        if not await store.delete(name):
            raise NotFound(f"connector {name!r} does not exist", code="connector_not_found")
        return {"object": "connector.deleted", "name": name, "deleted": True}

    app.include_router(admin)

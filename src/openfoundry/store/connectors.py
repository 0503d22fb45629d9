"""Queries for OpenAPI connectors (global: registered by the admin, usable by every project).

Rows carry the connector's credential as given, since calls need it; only the admin API and the
openapi tool read them, and neither shows nor logs it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from openfoundry.store import tables
from openfoundry.store.db import Database


class ConnectorStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, spec: dict[str, Any], base_url: str | None, auth: dict[str, Any]) -> bool:
        """Store a new connector; False when the name is taken."""
        now = dt.datetime.now(dt.UTC)
        row = {"name": name, "spec": spec, "base_url": base_url, "auth": auth, "created_at": now, "updated_at": now}
        try:
            async with self.db.engine.begin() as connection:
                await connection.execute(tables.connectors.insert().values(**row))
        except sa.exc.IntegrityError:
            return False
        return True

    async def get(self, name: str) -> dict[str, Any] | None:
        query = sa.select(tables.connectors).where(tables.connectors.c.name == name)
        async with self.db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return dict(row._mapping) if row is not None else None

    async def all(self) -> list[dict[str, Any]]:
        query = sa.select(tables.connectors).order_by(tables.connectors.c.name)
        async with self.db.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    async def delete(self, name: str) -> bool:
        async with self.db.engine.begin() as connection:
            result = await connection.execute(tables.connectors.delete().where(tables.connectors.c.name == name))
            return bool(result.rowcount)

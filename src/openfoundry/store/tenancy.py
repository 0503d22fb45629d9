"""Queries for projects and API keys (admin paths only; the hot path reads the in-memory key ring)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from openfoundry.store import tables
from openfoundry.store.db import Database

_KEY_COLUMNS = [c for c in tables.api_keys.c if c.name != "hash"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TenancyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_project(self, name: str, fields: dict[str, Any]) -> bool:
        now = _now()
        try:
            async with self.db.engine.begin() as connection:
                await connection.execute(
                    tables.projects.insert().values(name=name, created_at=now, updated_at=now, **fields)
                )
        except sa.exc.IntegrityError:
            return False
        return True

    async def update_project(self, name: str, fields: dict[str, Any]) -> bool:
        async with self.db.engine.begin() as connection:
            result = await connection.execute(
                tables.projects.update().where(tables.projects.c.name == name).values(updated_at=_now(), **fields)
            )
            return bool(result.rowcount)

    async def projects(self, name: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(tables.projects).order_by(tables.projects.c.name)
        if name is not None:
            query = query.where(tables.projects.c.name == name)
        async with self.db.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    async def create_key(self, fields: dict[str, Any]) -> None:
        now = _now()
        async with self.db.engine.begin() as connection:
            await connection.execute(tables.api_keys.insert().values(created_at=now, updated_at=now, **fields))

    async def keys(self, project: str | None = None) -> list[dict[str, Any]]:
        """Keys as the admin API shows them: never the hash."""
        query = sa.select(*_KEY_COLUMNS).order_by(tables.api_keys.c.created_at)
        if project is not None:
            query = query.where(tables.api_keys.c.project == project)
        async with self.db.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    async def revoke_key(self, key_id: str) -> bool:
        now = _now()
        async with self.db.engine.begin() as connection:
            result = await connection.execute(
                tables.api_keys.update()
                .where(tables.api_keys.c.id == key_id, tables.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now, updated_at=now)
            )
            return bool(result.rowcount)

    async def version(self) -> tuple[Any, ...]:
        """Changes to keys or projects show here: each table's latest update and row count."""
        found: list[Any] = []
        async with self.db.engine.connect() as connection:
            for table in (tables.api_keys, tables.projects):
                row = (await connection.execute(sa.select(sa.func.max(table.c.updated_at), sa.func.count()))).one()
                found += [row[0], int(row[1])]
        return tuple(found)

    async def live_keys(self) -> list[dict[str, Any]]:
        """Every key not revoked, hash included, for the key ring."""
        query = sa.select(tables.api_keys).where(tables.api_keys.c.revoked_at.is_(None))
        async with self.db.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

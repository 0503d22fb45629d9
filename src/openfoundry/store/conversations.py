"""Conversations and their items, each conversation owned by a project."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from openfoundry.store import tables
from openfoundry.store.db import Database
from openfoundry.store.files import Page, now, paged


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, project: str, conversation_id: str, metadata: dict[str, str], items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        row = {"id": conversation_id, "project": project, "meta": metadata, "created_at": now()}
        async with self.db.engine.begin() as connection:
            await connection.execute(tables.conversations.insert().values(row))
            await _append(connection, conversation_id, items)
        return row

    async def get(self, project: str, conversation_id: str) -> dict[str, Any] | None:
        table = tables.conversations.c
        async with self.db.engine.connect() as connection:
            row = (
                await connection.execute(
                    sa.select(tables.conversations).where(table.id == conversation_id, table.project == project)
                )
            ).first()
        return None if row is None else dict(row._mapping)

    async def update(self, project: str, conversation_id: str, metadata: dict[str, str]) -> dict[str, Any] | None:
        table = tables.conversations
        async with self.db.engine.begin() as connection:
            await connection.execute(
                table.update().where(table.c.id == conversation_id, table.c.project == project).values(meta=metadata)
            )
        return await self.get(project, conversation_id)

    async def delete(self, project: str, conversation_id: str) -> bool:
        table, items = tables.conversations, tables.conversation_items
        async with self.db.engine.begin() as connection:
            if not await _owned(connection, project, conversation_id):
                return False
            await connection.execute(items.delete().where(items.c.conversation_id == conversation_id))
            await connection.execute(table.delete().where(table.c.id == conversation_id))
        return True

    async def append(self, project: str, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        """Add items at the end; False when the project has no such conversation."""
        async with self.db.engine.begin() as connection:
            if not await _owned(connection, project, conversation_id):
                return False
            await _append(connection, conversation_id, items)
        return True

    async def items(self, project: str, conversation_id: str) -> list[dict[str, Any]] | None:
        """Every item, oldest first: the context a response in this conversation starts from."""
        items = tables.conversation_items.c
        async with self.db.engine.connect() as connection:
            if not await _owned(connection, project, conversation_id):
                return None
            rows = await connection.execute(
                sa.select(items.item).where(items.conversation_id == conversation_id).order_by(items.seq)
            )
            return [item for (item,) in rows]

    async def page(self, project: str, conversation_id: str, page: Page) -> tuple[list[dict[str, Any]], bool] | None:
        items = tables.conversation_items.c
        async with self.db.engine.connect() as connection:
            if not await _owned(connection, project, conversation_id):
                return None
            query = sa.select(items.item, items.item_id, items.seq).where(items.conversation_id == conversation_id)
            rows, more = await paged(connection, query, items.seq, items.item_id, page)
        return [row["item"] for row in rows], more

    async def item(self, project: str, conversation_id: str, item_id: str) -> dict[str, Any] | None:
        items = tables.conversation_items.c
        async with self.db.engine.connect() as connection:
            if not await _owned(connection, project, conversation_id):
                return None
            query = sa.select(items.item).where(items.conversation_id == conversation_id, items.item_id == item_id)
            return (await connection.execute(query.order_by(items.seq).limit(1))).scalar()

    async def delete_item(self, project: str, conversation_id: str, item_id: str) -> bool:
        items = tables.conversation_items
        async with self.db.engine.begin() as connection:
            if not await _owned(connection, project, conversation_id):
                return False
            result = await connection.execute(
                items.delete().where(items.c.conversation_id == conversation_id, items.c.item_id == item_id)
            )
            return bool(result.rowcount)

    async def find_item(self, project: str, item_id: str) -> dict[str, Any] | None:
        """Any item of the project's conversations with this id (for `item_reference` inputs)."""
        items, table = tables.conversation_items.c, tables.conversations.c
        query = (
            sa.select(items.item)
            .join(tables.conversations, table.id == items.conversation_id)
            .where(items.item_id == item_id, table.project == project)
            .limit(1)
        )
        async with self.db.engine.connect() as connection:
            return (await connection.execute(query)).scalar()


async def _owned(connection: AsyncConnection, project: str, conversation_id: str) -> bool:
    table = tables.conversations.c
    query = sa.select(table.id).where(table.id == conversation_id, table.project == project)
    return (await connection.execute(query)).first() is not None


async def _append(connection: AsyncConnection, conversation_id: str, items: list[dict[str, Any]]) -> None:
    if items:
        rows = [{"conversation_id": conversation_id, "item_id": item["id"], "item": item} for item in items]
        await connection.execute(tables.conversation_items.insert(), rows)

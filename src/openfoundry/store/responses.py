"""Stored responses and their input and output items, each owned by a project.

The `status` column is the truth about a response (a background run in one process and a cancel in
another meet there); the JSON body holds the rest of the response object, its output lives in
`response_items` with the input.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from openfoundry.store import tables
from openfoundry.store.db import Database
from openfoundry.store.files import Page, now, paged

ACTIVE = ("queued", "in_progress")
_MAX_CHAIN = 10_000
"""Responses followed back through previous_response_id at most (a guard, not a product limit)."""


class ResponseStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(
        self,
        project: str,
        response: dict[str, Any],
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
    ) -> None:
        """Store a new response (finished, or queued for a background run) with its items."""
        moment = now()
        row = {
            "id": response["id"],
            "project": project,
            "status": response["status"],
            "body": _body(response),
            "previous_response_id": response.get("previous_response_id"),
            "background": bool(response.get("background")),
            "created_at": moment,
            "updated_at": moment,
        }
        async with self.db.engine.begin() as connection:
            await connection.execute(tables.responses.insert().values(row))
            await _insert_items(connection, response["id"], "input", inputs)
            await _insert_items(connection, response["id"], "output", outputs)

    async def start(self, response_id: str) -> bool:
        """queued -> in_progress; False when the response was cancelled meanwhile."""
        return await self._move(response_id, ("queued",), {"status": "in_progress"})

    async def finish(self, response: dict[str, Any], outputs: list[dict[str, Any]]) -> bool:
        """Record the end of a background run; False (and nothing written) when it was cancelled."""
        values = {"status": response["status"], "body": _body(response)}
        async with self.db.engine.begin() as connection:
            if not await self._move(response["id"], ACTIVE, values, connection):
                return False
            await _insert_items(connection, response["id"], "output", outputs)
        return True

    async def cancel(self, response_id: str) -> bool:
        return await self._move(response_id, ACTIVE, {"status": "cancelled"})

    async def status(self, response_id: str) -> str | None:
        query = sa.select(tables.responses.c.status).where(tables.responses.c.id == response_id)
        async with self.db.engine.connect() as connection:
            return (await connection.execute(query)).scalar()

    async def get(self, project: str, response_id: str) -> dict[str, Any] | None:
        """The response object with its output (items still carry the runner's traces)."""
        table = tables.responses
        async with self.db.engine.connect() as connection:
            row = (
                await connection.execute(
                    sa.select(table.c.status, table.c.body).where(table.c.id == response_id, table.c.project == project)
                )
            ).first()
            if row is None:
                return None
            items = tables.response_items.c
            output = await connection.execute(
                sa.select(items.item)
                .where(items.response_id == response_id, items.kind == "output")
                .order_by(items.position)
            )
            return {**row.body, "status": row.status, "output": [item for (item,) in output]}

    async def delete(self, project: str, response_id: str) -> bool:
        table = tables.responses
        async with self.db.engine.begin() as connection:
            owned = await connection.execute(
                sa.select(table.c.id).where(table.c.id == response_id, table.c.project == project)
            )
            if owned.first() is None:
                return False
            items = tables.response_items
            await connection.execute(items.delete().where(items.c.response_id == response_id))
            await connection.execute(table.delete().where(table.c.id == response_id))
        return True

    async def input_items(self, project: str, response_id: str, page: Page) -> tuple[list[dict[str, Any]], bool] | None:
        table, items = tables.responses, tables.response_items.c
        async with self.db.engine.connect() as connection:
            owned = await connection.execute(
                sa.select(table.c.id).where(table.c.id == response_id, table.c.project == project)
            )
            if owned.first() is None:
                return None
            query = sa.select(items.item, items.item_id, items.position).where(
                items.response_id == response_id, items.kind == "input"
            )
            rows, more = await paged(connection, query, items.position, items.item_id, page)
        return [row["item"] for row in rows], more

    async def history(self, project: str, response_id: str) -> tuple[str, list[dict[str, Any]]] | None:
        """(status, items) of a response and every one before it through previous_response_id: the
        context a response continuing it starts from, oldest first (input, then output, of each)."""
        table = tables.responses.c
        chain = (
            sa.select(table.id, table.previous_response_id, table.status, sa.literal_column("0").label("depth"))
            .where(table.id == response_id, table.project == project)
            .cte("chain", recursive=True)
        )
        chain = chain.union_all(
            sa.select(table.id, table.previous_response_id, table.status, chain.c.depth + 1).where(
                table.id == chain.c.previous_response_id, table.project == project, chain.c.depth < _MAX_CHAIN
            )
        )
        items = tables.response_items.c
        async with self.db.engine.connect() as connection:
            status = (await connection.execute(sa.select(chain.c.status).where(chain.c.depth == 0))).scalar()
            if status is None:
                return None
            rows = await connection.execute(
                sa.select(items.item)
                .join(chain, chain.c.id == items.response_id)
                .order_by(chain.c.depth.desc(), items.kind, items.position)
            )
            return status, [item for (item,) in rows]

    async def find_item(self, project: str, item_id: str) -> dict[str, Any] | None:
        """Any stored item of the project's responses with this id (for `item_reference` inputs)."""
        items, table = tables.response_items.c, tables.responses.c
        query = (
            sa.select(items.item)
            .join(tables.responses, table.id == items.response_id)
            .where(items.item_id == item_id, table.project == project)
            .limit(1)
        )
        async with self.db.engine.connect() as connection:
            return (await connection.execute(query)).scalar()

    async def _move(
        self,
        response_id: str,
        allowed: tuple[str, ...],
        values: dict[str, Any],
        connection: AsyncConnection | None = None,
    ) -> bool:
        """Update a response only while its status is one of `allowed`."""
        table = tables.responses
        statement = (
            table.update()
            .where(table.c.id == response_id, table.c.status.in_(allowed))
            .values(updated_at=now(), **values)
        )
        if connection is not None:
            return bool((await connection.execute(statement)).rowcount)
        async with self.db.engine.begin() as own:
            return bool((await own.execute(statement)).rowcount)


def _body(response: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in response.items() if key != "output"}


async def _insert_items(connection: AsyncConnection, response_id: str, kind: str, items: list[dict[str, Any]]) -> None:
    if items:
        rows = [
            {"response_id": response_id, "kind": kind, "position": position, "item_id": item["id"], "item": item}
            for position, item in enumerate(items)
        ]
        await connection.execute(tables.response_items.insert(), rows)

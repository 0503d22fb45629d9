"""Uploaded files, with their bytes in the database so every process and node sees them.

Every row carries the owning project (`""` in open mode); every query is scoped by it. Lists are
cursor pages ordered by (created_at, id), as OpenAI's `after` / `before` cursors expect.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from openfoundry.errors import InvalidRequest
from openfoundry.store import tables
from openfoundry.store.db import Database
from openfoundry.store.usage import utc

_FILE_COLUMNS = [c for c in tables.files.c if c.name != "content"]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def epoch(moment: dt.datetime | None) -> int | None:
    """Unix seconds, as OpenAI's objects give times."""
    return None if moment is None else int(utc(moment).timestamp())


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: at most `limit` rows in `order` of creation, after or before a cursor id."""

    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


async def paged(
    connection: AsyncConnection,
    query: sa.Select[Any],
    created: sa.ColumnElement[Any],
    key: sa.ColumnElement[Any],
    page: Page,
) -> tuple[list[dict[str, Any]], bool]:
    """The rows of `query` on one page, and whether more follow. A cursor is an id that `query` itself
    returns, so another project's ids are unknown cursors (400) here too."""
    descending = page.order == "desc"
    backwards = page.before is not None and page.after is None
    cursor = page.before if backwards else page.after
    if cursor is not None:
        found = (await connection.execute(query.with_only_columns(created).where(key == cursor))).first()
        if found is None:
            where = "before" if backwards else "after"
            raise InvalidRequest(f"'{where}': no object with id {cursor!r} in this list", param=where)
        later = descending == backwards
        at = found[0]
        query = query.where(
            sa.or_(created > at, sa.and_(created == at, key > cursor))
            if later
            else sa.or_(created < at, sa.and_(created == at, key < cursor))
        )
    ascending = descending == backwards
    ordering = (created.asc(), key.asc()) if ascending else (created.desc(), key.desc())
    rows = [dict(row._mapping) for row in await connection.execute(query.order_by(*ordering).limit(page.limit + 1))]
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    if backwards:
        rows.reverse()
    return rows, more


class FileStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _live(project: str) -> sa.ColumnElement[bool]:
        files = tables.files.c
        return sa.and_(files.project == project, sa.or_(files.expires_at.is_(None), files.expires_at > now()))

    async def add(
        self, project: str, filename: str, purpose: str, content: bytes, expires_at: dt.datetime | None
    ) -> dict[str, Any]:
        row = {
            "id": new_id("file-"),
            "project": project,
            "filename": filename,
            "purpose": purpose,
            "bytes": len(content),
            "created_at": now(),
            "expires_at": expires_at,
        }
        async with self.db.engine.begin() as connection:
            await connection.execute(tables.files.insert().values(content=content, **row))
        return row

    async def get(self, project: str, file_id: str) -> dict[str, Any] | None:
        query = sa.select(*_FILE_COLUMNS).where(self._live(project), tables.files.c.id == file_id)
        async with self.db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else dict(row._mapping)

    async def content(self, project: str, file_id: str) -> tuple[str, bytes] | None:
        """The file's name and bytes."""
        files = tables.files.c
        query = sa.select(files.filename, files.content).where(self._live(project), files.id == file_id)
        async with self.db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else (row.filename, bytes(row.content))

    async def list_files(self, project: str, purpose: str | None, page: Page) -> tuple[list[dict[str, Any]], bool]:
        query = sa.select(*_FILE_COLUMNS).where(self._live(project))
        if purpose is not None:
            query = query.where(tables.files.c.purpose == purpose)
        async with self.db.engine.connect() as connection:
            return await paged(connection, query, tables.files.c.created_at, tables.files.c.id, page)

    async def delete(self, project: str, file_id: str) -> bool:
        """Delete the file and take it out of every vector store it is in (their search caches see a new
        version)."""
        files, links, chunks = tables.files.c, tables.vector_store_files.c, tables.vector_store_chunks.c
        async with self.db.engine.begin() as connection:
            owned = await connection.execute(sa.select(files.id).where(files.project == project, files.id == file_id))
            if owned.first() is None:
                return False
            stores = [
                row.vector_store_id
                for row in await connection.execute(
                    sa.select(links.vector_store_id).where(links.project == project, links.file_id == file_id)
                )
            ]
            await connection.execute(tables.vector_store_chunks.delete().where(chunks.file_id == file_id))
            await connection.execute(tables.vector_store_files.delete().where(links.file_id == file_id))
            if stores:
                vector_stores = tables.vector_stores.c
                await connection.execute(
                    tables.vector_stores.update()
                    .where(vector_stores.id.in_(stores))
                    .values(version=vector_stores.version + 1)
                )
            await connection.execute(tables.files.delete().where(files.id == file_id))
            return True

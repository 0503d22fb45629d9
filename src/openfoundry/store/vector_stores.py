"""Vector stores, the files attached to them, and their chunks (text plus a float32 embedding).

A store's `version` goes up whenever what a search sees changes (a file finished, removed, or its
attributes changed), so a process's search cache knows when to reload it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from openfoundry.store import tables
from openfoundry.store.db import Database
from openfoundry.store.files import Page, new_id, now, paged
from openfoundry.store.usage import utc

STALLED_AFTER = dt.timedelta(minutes=10)
"""A file still `in_progress` with no progress for this long was left by a process that stopped."""
STATUSES = ("in_progress", "completed", "failed", "cancelled")

_stores = tables.vector_stores.c
_links = tables.vector_store_files.c
_chunks = tables.vector_store_chunks.c


@dataclass(frozen=True, slots=True)
class StoredChunk:
    file_id: str
    filename: str
    attributes: dict[str, Any]
    text: str
    embedding: bytes


async def _bump(connection: AsyncConnection, store_id: str) -> None:
    await connection.execute(
        tables.vector_stores.update().where(_stores.id == store_id).values(version=_stores.version + 1)
    )


class VectorStores:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, project: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A new store; `fields` are name, description, meta and expires_after."""
        moment = now()
        row = {"id": new_id("vs_"), "project": project, "version": 0, "created_at": moment, "last_active_at": moment}
        row |= {"embedding_deployment": None, **fields}
        async with self.db.engine.begin() as connection:
            await connection.execute(tables.vector_stores.insert().values(**row))
        return row

    async def get(self, project: str, store_id: str) -> dict[str, Any] | None:
        query = sa.select(tables.vector_stores).where(_stores.project == project, _stores.id == store_id)
        async with self.db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else dict(row._mapping)

    async def list_stores(self, project: str, page: Page) -> tuple[list[dict[str, Any]], bool]:
        query = sa.select(tables.vector_stores).where(_stores.project == project)
        async with self.db.engine.connect() as connection:
            return await paged(connection, query, _stores.created_at, _stores.id, page)

    async def update(self, project: str, store_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        if fields:
            async with self.db.engine.begin() as connection:
                await connection.execute(
                    tables.vector_stores.update()
                    .where(_stores.project == project, _stores.id == store_id)
                    .values(**fields)
                )
        return await self.get(project, store_id)

    async def delete(self, project: str, store_id: str) -> bool:
        async with self.db.engine.begin() as connection:
            result = await connection.execute(
                tables.vector_stores.delete().where(_stores.project == project, _stores.id == store_id)
            )
            if not result.rowcount:
                return False
            await connection.execute(tables.vector_store_chunks.delete().where(_chunks.vector_store_id == store_id))
            await connection.execute(tables.vector_store_files.delete().where(_links.vector_store_id == store_id))
            batches = tables.vector_store_file_batches
            await connection.execute(batches.delete().where(batches.c.vector_store_id == store_id))
        return True

    async def claim_embedding_deployment(self, store_id: str, deployment: str) -> str:
        """The deployment the store embeds with: `deployment` unless the store already has one (all its
        vectors must come from the same model)."""
        async with self.db.engine.begin() as connection:
            await connection.execute(
                tables.vector_stores.update()
                .where(_stores.id == store_id, _stores.embedding_deployment.is_(None))
                .values(embedding_deployment=deployment)
            )
            chosen = await connection.scalar(sa.select(_stores.embedding_deployment).where(_stores.id == store_id))
        return str(chosen)

    async def touch(self, store_ids: Sequence[str]) -> None:
        """Mark the stores used now (their `last_active_at`, which expiry counts from)."""
        async with self.db.engine.begin() as connection:
            await connection.execute(
                tables.vector_stores.update().where(_stores.id.in_(store_ids)).values(last_active_at=now())
            )

    async def counts(self, store_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Per store: how many files are in each status, the total, and the bytes they use."""
        await self._fail_stalled(store_ids)
        query = (
            sa.select(_links.vector_store_id, _links.status, sa.func.count(), sa.func.sum(_links.usage_bytes))
            .where(_links.vector_store_id.in_(store_ids))
            .group_by(_links.vector_store_id, _links.status)
        )
        found = {store_id: dict.fromkeys((*STATUSES, "total", "usage_bytes"), 0) for store_id in store_ids}
        async with self.db.engine.connect() as connection:
            for store_id, status, count, usage in await connection.execute(query):
                found[store_id][status] = int(count)
                found[store_id]["total"] += int(count)
                found[store_id]["usage_bytes"] += int(usage or 0)
        return found

    async def add_file(
        self,
        project: str,
        store_id: str,
        file_id: str,
        attributes: dict[str, Any] | None,
        chunking: dict[str, Any],
        batch_id: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Attach a file (in progress); a file already attached is returned as it is (moved into the
        batch, if one is given), with False."""
        existing = await self.file(project, store_id, file_id)
        if existing is not None:
            if batch_id is not None:
                await self._join_batch(store_id, file_id, batch_id)
                existing["batch_id"] = batch_id
            return existing, False
        moment = now()
        row = {
            "vector_store_id": store_id,
            "file_id": file_id,
            "project": project,
            "status": "in_progress",
            "last_error": None,
            "usage_bytes": 0,
            "attributes": attributes,
            "chunking_strategy": chunking,
            "batch_id": batch_id,
            "created_at": moment,
            "updated_at": moment,
        }
        try:
            async with self.db.engine.begin() as connection:
                await connection.execute(tables.vector_store_files.insert().values(**row))
        except sa.exc.IntegrityError:  # attached by a concurrent request
            raced = await self.file(project, store_id, file_id)
            assert raced is not None
            return raced, False
        return row, True

    async def _join_batch(self, store_id: str, file_id: str, batch_id: str) -> None:
        async with self.db.engine.begin() as connection:
            await connection.execute(
                tables.vector_store_files.update()
                .where(_links.vector_store_id == store_id, _links.file_id == file_id)
                .values(batch_id=batch_id)
            )

    async def create_batch(self, project: str, store_id: str) -> dict[str, Any]:
        row = {"id": new_id("vsfb_"), "vector_store_id": store_id, "project": project, "created_at": now()}
        async with self.db.engine.begin() as connection:
            await connection.execute(tables.vector_store_file_batches.insert().values(**row))
        return row

    async def batch(self, project: str, store_id: str, batch_id: str) -> dict[str, Any] | None:
        batches = tables.vector_store_file_batches.c
        query = sa.select(tables.vector_store_file_batches).where(
            batches.project == project, batches.vector_store_id == store_id, batches.id == batch_id
        )
        async with self.db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else dict(row._mapping)

    async def batch_counts(self, store_id: str, batch_id: str) -> dict[str, int]:
        """How many of the batch's files are in each status, and the total."""
        await self._fail_stalled([store_id])
        query = (
            sa.select(_links.status, sa.func.count())
            .where(_links.vector_store_id == store_id, _links.batch_id == batch_id)
            .group_by(_links.status)
        )
        found = dict.fromkeys((*STATUSES, "total"), 0)
        async with self.db.engine.connect() as connection:
            for status, count in await connection.execute(query):
                found[status] = int(count)
                found["total"] += int(count)
        return found

    async def cancel_batch(self, store_id: str, batch_id: str) -> None:
        """Stop the batch's files still in progress (their tasks notice at their next heartbeat)."""
        async with self.db.engine.begin() as connection:
            await connection.execute(
                tables.vector_store_files.update()
                .where(_links.vector_store_id == store_id, _links.batch_id == batch_id, _links.status == "in_progress")
                .values(status="cancelled", updated_at=now())
            )

    async def file(self, project: str, store_id: str, file_id: str) -> dict[str, Any] | None:
        await self._fail_stalled([store_id])
        query = sa.select(tables.vector_store_files).where(
            _links.project == project, _links.vector_store_id == store_id, _links.file_id == file_id
        )
        async with self.db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else dict(row._mapping)

    async def files(
        self, project: str, store_id: str, status: str | None, page: Page, batch_id: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        await self._fail_stalled([store_id])
        query = sa.select(tables.vector_store_files).where(
            _links.project == project, _links.vector_store_id == store_id
        )
        if status is not None:
            query = query.where(_links.status == status)
        if batch_id is not None:
            query = query.where(_links.batch_id == batch_id)
        async with self.db.engine.connect() as connection:
            return await paged(connection, query, _links.created_at, _links.file_id, page)

    async def set_attributes(
        self, project: str, store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        async with self.db.engine.begin() as connection:
            result = await connection.execute(
                tables.vector_store_files.update()
                .where(_links.project == project, _links.vector_store_id == store_id, _links.file_id == file_id)
                .values(attributes=attributes)
            )
            if result.rowcount:
                await _bump(connection, store_id)
        return await self.file(project, store_id, file_id)

    async def remove_file(self, project: str, store_id: str, file_id: str) -> bool:
        async with self.db.engine.begin() as connection:
            result = await connection.execute(
                tables.vector_store_files.delete().where(
                    _links.project == project, _links.vector_store_id == store_id, _links.file_id == file_id
                )
            )
            if not result.rowcount:
                return False
            await connection.execute(
                tables.vector_store_chunks.delete().where(
                    _chunks.vector_store_id == store_id, _chunks.file_id == file_id
                )
            )
            await _bump(connection, store_id)
        return True

    async def heartbeat(self, store_id: str, file_id: str) -> bool:
        """Record that processing the file is still going; False when it should stop (the file was
        removed or its batch cancelled)."""
        async with self.db.engine.begin() as connection:
            result = await connection.execute(
                tables.vector_store_files.update()
                .where(_links.vector_store_id == store_id, _links.file_id == file_id, _links.status == "in_progress")
                .values(updated_at=now())
            )
            return bool(result.rowcount)

    async def complete(
        self, store_id: str, file_id: str, project: str, texts: Sequence[str], embeddings: Sequence[bytes]
    ) -> bool:
        """Store the file's chunks and mark it completed; False when it was removed meanwhile."""
        usage = sum(len(text.encode()) + len(vector) for text, vector in zip(texts, embeddings, strict=True))
        async with self.db.engine.begin() as connection:
            result = await connection.execute(
                tables.vector_store_files.update()
                .where(_links.vector_store_id == store_id, _links.file_id == file_id, _links.status == "in_progress")
                .values(status="completed", usage_bytes=usage, updated_at=now())
            )
            if not result.rowcount:
                return False
            if texts:
                rows = [
                    {"vector_store_id": store_id, "file_id": file_id, "project": project, "position": index}
                    | {"text": text, "embedding": vector}
                    for index, (text, vector) in enumerate(zip(texts, embeddings, strict=True))
                ]
                await connection.execute(tables.vector_store_chunks.insert(), rows)
            await _bump(connection, store_id)
        return True

    async def fail(self, store_id: str, file_id: str, code: str, message: str) -> None:
        async with self.db.engine.begin() as connection:
            await connection.execute(
                tables.vector_store_files.update()
                .where(_links.vector_store_id == store_id, _links.file_id == file_id, _links.status == "in_progress")
                .values(status="failed", last_error={"code": code, "message": message}, updated_at=now())
            )

    async def _fail_stalled(self, store_ids: Sequence[str]) -> None:
        stalled = sa.and_(
            _links.vector_store_id.in_(store_ids),
            _links.status == "in_progress",
            _links.updated_at < now() - STALLED_AFTER,
        )
        async with self.db.engine.connect() as connection:
            if (await connection.execute(sa.select(_links.file_id).where(stalled).limit(1))).first() is None:
                return  # the usual case, answered without taking a write lock
        error = {"code": "server_error", "message": "processing stopped (the server restarted); add the file again"}
        async with self.db.engine.begin() as connection:
            await connection.execute(
                tables.vector_store_files.update().where(stalled).values(status="failed", last_error=error)
            )

    async def chunks(self, store_id: str) -> list[StoredChunk]:
        """Every chunk of the store's completed files, in file and position order."""
        query = (
            sa.select(tables.files.c.filename, _links.attributes, _chunks.file_id, _chunks.text, _chunks.embedding)
            .select_from(
                tables.vector_store_chunks.join(
                    tables.vector_store_files,
                    sa.and_(_links.vector_store_id == _chunks.vector_store_id, _links.file_id == _chunks.file_id),
                ).join(tables.files, tables.files.c.id == _chunks.file_id)
            )
            .where(_chunks.vector_store_id == store_id, _links.status == "completed")
            .order_by(_chunks.file_id, _chunks.position)
        )
        async with self.db.engine.connect() as connection:
            return [
                StoredChunk(row.file_id, row.filename, row.attributes or {}, row.text, bytes(row.embedding))
                for row in await connection.execute(query)
            ]


def expires_at(row: dict[str, Any]) -> dt.datetime | None:
    """When the store expires: `expires_after.days` after it was last used; None if it never does."""
    policy = row.get("expires_after")
    if not policy:
        return None
    return utc(row["last_active_at"]) + dt.timedelta(days=int(policy["days"]))

"""OpenAI's vector store file batches: /v1/vector_stores/{id}/file_batches (create, get, cancel, files).

A batch adds many files at once; its status and counts are those of the files it holds.
"""

# No `from __future__ import annotations`: FastAPI must see the route signatures' `Caller` (an
# Annotated dependency made inside add_routes) as an object, not a name to look up in the module.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import Field
from starlette.responses import Response

from openfoundry.agents.chunking import Chunking, parse_chunking
from openfoundry.agents.ingest import Ingestor
from openfoundry.api.files import list_page
from openfoundry.api.vector_stores import (
    POLL_AFTER_MS,
    Attributes,
    Open,
    StoreFileIn,
    owned_store,
    store_file_object,
)
from openfoundry.errors import InvalidRequest, NotFound
from openfoundry.gateway import Gateway
from openfoundry.store.files import FileStore, Page, epoch
from openfoundry.store.vector_stores import VectorStores
from openfoundry.tenancy.auth import Principal

MAX_FILES = 2000


class BatchIn(Open):
    file_ids: list[str] | None = Field(None, max_length=MAX_FILES)
    files: list[StoreFileIn] | None = Field(None, max_length=MAX_FILES)
    attributes: Attributes = None
    chunking_strategy: dict[str, Any] | None = None

    def entries(self) -> list[tuple[str, dict[str, Any] | None, Chunking]]:
        """(file id, attributes, chunking) per file: `files` carry their own, `file_ids` share the batch's."""
        if (self.file_ids is None) == (self.files is None) or not (self.file_ids or self.files):
            raise InvalidRequest("send either 'file_ids' or 'files', with at least one file", param="file_ids")
        if self.files is not None:
            return [
                (f.file_id, f.attributes, parse_chunking(f.chunking_strategy, f"files[{n}].chunking_strategy"))
                for n, f in enumerate(self.files)
            ]
        chunking = parse_chunking(self.chunking_strategy)
        return [(file_id, self.attributes, chunking) for file_id in dict.fromkeys(self.file_ids or [])]


def batch_object(row: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    status = next((name for name in ("in_progress", "cancelled") if counts[name]), "completed")
    return {
        "id": row["id"],
        "object": "vector_store.files_batch",
        "created_at": epoch(row["created_at"]),
        "vector_store_id": row["vector_store_id"],
        "status": status,
        "file_counts": {name: counts[name] for name in ("in_progress", "completed", "failed", "cancelled", "total")},
    }


def add_routes(app: FastAPI, gateway: Gateway, files: FileStore, stores: VectorStores, ingestor: Ingestor) -> None:
    def caller(request: Request) -> Principal:
        return gateway.authenticate(request.headers)

    Caller = Annotated[Principal, Depends(caller)]
    router = APIRouter(prefix="/v1/vector_stores/{store_id}/file_batches", tags=["vector_stores"])

    async def owned_batch(principal: Principal, store_id: str, batch_id: str) -> dict[str, Any]:
        await owned_store(stores, principal, store_id)
        row = await stores.batch(principal.project or "", store_id, batch_id)
        if row is None:
            raise NotFound(f"No file batch '{batch_id}' in vector store '{store_id}'", param="batch_id")
        return row

    async def shown(row: dict[str, Any], response: Response | None = None) -> dict[str, Any]:
        shaped = batch_object(row, await stores.batch_counts(row["vector_store_id"], row["id"]))
        if response is not None and shaped["status"] == "in_progress":
            response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
        return shaped

    @router.post("")
    async def create_batch(store_id: str, spec: BatchIn, principal: Caller) -> dict[str, Any]:
        store = await owned_store(stores, principal, store_id)
        entries = spec.entries()
        project = principal.project or ""
        for file_id, _, _ in entries:
            if await files.get(project, file_id) is None:
                raise NotFound(f"No file found with id '{file_id}'", param="file_ids")
        store["embedding_deployment"] = await ingestor.deployment_for(principal, store)
        batch = await stores.create_batch(project, store_id)
        for file_id, attributes, chunking in entries:
            await ingestor.attach(principal, store, file_id, attributes, chunking, batch["id"])
        return await shown(batch)

    @router.get("/{batch_id}")
    async def get_batch(store_id: str, batch_id: str, principal: Caller, response: Response) -> dict[str, Any]:
        return await shown(await owned_batch(principal, store_id, batch_id), response)

    @router.post("/{batch_id}/cancel")
    async def cancel_batch(store_id: str, batch_id: str, principal: Caller) -> dict[str, Any]:
        batch = await owned_batch(principal, store_id, batch_id)
        await stores.cancel_batch(store_id, batch_id)
        return await shown(batch)

    @router.get("/{batch_id}/files")
    async def list_batch_files(
        store_id: str,
        batch_id: str,
        principal: Caller,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        before: str | None = None,
        filter: Literal["in_progress", "completed", "failed", "cancelled"] | None = None,
    ) -> dict[str, Any]:
        await owned_batch(principal, store_id, batch_id)
        page = Page(limit, order, after, before)
        rows, more = await stores.files(principal.project or "", store_id, filter, page, batch_id)
        return list_page([store_file_object(row) for row in rows], more)

    app.include_router(router)

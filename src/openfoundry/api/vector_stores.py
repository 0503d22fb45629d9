"""OpenAI's Vector Stores API under /v1/vector_stores: stores, their files, and search (per project)."""

# No `from __future__ import annotations`: FastAPI must see the route signatures' `Caller` (an
# Annotated dependency made inside add_routes) as an object, not a name to look up in the module.

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.responses import Response

from openfoundry.agents.chunking import parse_chunking
from openfoundry.agents.filters import parse_filter
from openfoundry.agents.ingest import FileError, Ingestor, extract_text
from openfoundry.agents.search import Hit, Searcher, parse_ranking
from openfoundry.api.files import list_page
from openfoundry.errors import InvalidRequest, NotFound
from openfoundry.gateway import Gateway
from openfoundry.store.files import FileStore, Page, epoch, now
from openfoundry.store.vector_stores import VectorStores, expires_at
from openfoundry.tenancy.auth import Principal

POLL_AFTER_MS = "200"
"""Told to SDK pollers (`openai-poll-after-ms`) while a file is still being processed."""
Scalar = str | bool | int | float


class Open(BaseModel):
    """Request bodies: unknown fields are ignored, as OpenAI's clients may send newer ones."""

    model_config = ConfigDict(extra="ignore")


def checked_pairs(value: dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value) > 16:
        raise ValueError(f"{what} takes at most 16 keys")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"{what} keys are at most 64 characters")
        if isinstance(item, str) and len(item) > 512:
            raise ValueError(f"{what} string values are at most 512 characters")
    return value


Metadata = Annotated[dict[str, str] | None, AfterValidator(lambda value: checked_pairs(value, "metadata"))]
Attributes = Annotated[dict[str, Scalar] | None, AfterValidator(lambda value: checked_pairs(value, "attributes"))]


class ExpiresAfter(Open):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class StoreIn(Open):
    name: str = Field("", max_length=1024)
    description: str | None = Field(None, max_length=4096)
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    chunking_strategy: dict[str, Any] | None = None
    metadata: Metadata = None
    expires_after: ExpiresAfter | None = None


class StorePatch(Open):
    name: str | None = Field(None, max_length=1024)
    metadata: Metadata = None
    expires_after: ExpiresAfter | None = None


class StoreFileIn(Open):
    file_id: str
    attributes: Attributes = None
    chunking_strategy: dict[str, Any] | None = None


class AttributesIn(Open):
    attributes: Attributes


class SearchIn(Open):
    query: str | list[str]
    max_num_results: int = Field(10, ge=1, le=50)
    filters: dict[str, Any] | None = None
    ranking_options: dict[str, Any] | None = None
    rewrite_query: bool = False


def store_object(row: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    expiry = expires_at(row)
    if expiry is not None and expiry <= now():
        status = "expired"
    else:
        status = "in_progress" if counts["in_progress"] else "completed"
    return {
        "id": row["id"],
        "object": "vector_store",
        "created_at": epoch(row["created_at"]),
        "name": row["name"],
        "description": row["description"],
        "usage_bytes": counts["usage_bytes"],
        "file_counts": {name: counts[name] for name in ("in_progress", "completed", "failed", "cancelled", "total")},
        "status": status,
        "expires_after": row["expires_after"],
        "expires_at": epoch(expiry),
        "last_active_at": epoch(row["last_active_at"]),
        "metadata": row["meta"] or {},
    }


def store_file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["file_id"],
        "object": "vector_store.file",
        "usage_bytes": row["usage_bytes"],
        "created_at": epoch(row["created_at"]),
        "vector_store_id": row["vector_store_id"],
        "status": row["status"],
        "last_error": row["last_error"],
        "chunking_strategy": row["chunking_strategy"],
        "attributes": row["attributes"] or {},
    }


def hit_object(hit: Hit) -> dict[str, Any]:
    return {
        "file_id": hit.file_id,
        "filename": hit.filename,
        "score": hit.score,
        "attributes": hit.attributes,
        "content": [{"type": "text", "text": hit.text}],
    }


async def owned_store(stores: VectorStores, principal: Principal, store_id: str) -> dict[str, Any]:
    """The caller's project's store; anything else is 404."""
    row = await stores.get(principal.project or "", store_id)
    if row is None:
        raise NotFound(f"No vector store found with id '{store_id}'", param="vector_store_id")
    return row


def _queries(query: str | list[str]) -> list[str]:
    queries = [query] if isinstance(query, str) else query
    if not queries or len(queries) > 10 or not all(q.strip() for q in queries):
        raise InvalidRequest("'query' must be a non-empty string or an array of 1 to 10 of them", param="query")
    return queries


def add_routes(
    app: FastAPI,
    gateway: Gateway,
    files: FileStore,
    stores: VectorStores,
    ingestor: Ingestor,
    searcher: Searcher,
) -> None:
    def caller(request: Request) -> Principal:
        return gateway.authenticate(request.headers)

    Caller = Annotated[Principal, Depends(caller)]
    router = APIRouter(prefix="/v1/vector_stores", tags=["vector_stores"])

    async def owned(principal: Principal, store_id: str) -> dict[str, Any]:
        return await owned_store(stores, principal, store_id)

    async def shown(row: dict[str, Any]) -> dict[str, Any]:
        return store_object(row, (await stores.counts([row["id"]]))[row["id"]])

    async def owned_file(principal: Principal, store_id: str, file_id: str) -> dict[str, Any]:
        await owned(principal, store_id)
        row = await stores.file(principal.project or "", store_id, file_id)
        if row is None:
            raise NotFound(f"No file '{file_id}' in vector store '{store_id}'", param="file_id")
        return row

    @router.post("")
    async def create_store(spec: StoreIn, principal: Caller) -> dict[str, Any]:
        project = principal.project or ""
        chunking = parse_chunking(spec.chunking_strategy)
        for file_id in spec.file_ids:
            if await files.get(project, file_id) is None:
                raise NotFound(f"No file found with id '{file_id}'", param="file_ids")
        fields = {"name": spec.name, "description": spec.description, "meta": spec.metadata}
        if spec.file_ids:  # chosen before the store exists, so a missing one leaves no empty store behind
            fields["embedding_deployment"] = ingestor.embedder.default_deployment(principal)
        fields["expires_after"] = spec.expires_after.model_dump() if spec.expires_after else None
        row = await stores.create(project, fields)
        for file_id in dict.fromkeys(spec.file_ids):
            await ingestor.attach(principal, row, file_id, None, chunking)
        return await shown(await owned(principal, row["id"]))

    @router.get("")
    async def list_stores(
        principal: Caller,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> dict[str, Any]:
        rows, more = await stores.list_stores(principal.project or "", Page(limit, order, after, before))
        counts = await stores.counts([row["id"] for row in rows])
        return list_page([store_object(row, counts[row["id"]]) for row in rows], more)

    @router.get("/{store_id}")
    async def get_store(store_id: str, principal: Caller) -> dict[str, Any]:
        return await shown(await owned(principal, store_id))

    @router.post("/{store_id}")
    async def update_store(store_id: str, patch: StorePatch, principal: Caller) -> dict[str, Any]:
        await owned(principal, store_id)
        fields: dict[str, Any] = {}
        if patch.name is not None:
            fields["name"] = patch.name
        if "metadata" in patch.model_fields_set:
            fields["meta"] = patch.metadata
        if "expires_after" in patch.model_fields_set:
            fields["expires_after"] = patch.expires_after.model_dump() if patch.expires_after else None
        row = await stores.update(principal.project or "", store_id, fields)
        if row is None:
            raise NotFound(f"No vector store found with id '{store_id}'", param="vector_store_id")
        return await shown(row)

    @router.delete("/{store_id}")
    async def delete_store(store_id: str, principal: Caller) -> dict[str, Any]:
        if not await stores.delete(principal.project or "", store_id):
            raise NotFound(f"No vector store found with id '{store_id}'", param="vector_store_id")
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    @router.post("/{store_id}/files")
    async def add_file(store_id: str, spec: StoreFileIn, principal: Caller) -> dict[str, Any]:
        store = await owned(principal, store_id)
        chunking = parse_chunking(spec.chunking_strategy)
        return store_file_object(await ingestor.attach(principal, store, spec.file_id, spec.attributes, chunking))

    @router.get("/{store_id}/files")
    async def list_files(
        store_id: str,
        principal: Caller,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        before: str | None = None,
        filter: Literal["in_progress", "completed", "failed", "cancelled"] | None = None,
    ) -> dict[str, Any]:
        await owned(principal, store_id)
        page = Page(limit, order, after, before)
        rows, more = await stores.files(principal.project or "", store_id, filter, page)
        return list_page([store_file_object(row) for row in rows], more)

    @router.get("/{store_id}/files/{file_id}")
    async def get_file(store_id: str, file_id: str, principal: Caller, response: Response) -> dict[str, Any]:
        row = await owned_file(principal, store_id, file_id)
        if row["status"] == "in_progress":
            response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
        return store_file_object(row)

    @router.post("/{store_id}/files/{file_id}")
    async def update_file(store_id: str, file_id: str, spec: AttributesIn, principal: Caller) -> dict[str, Any]:
        await owned_file(principal, store_id, file_id)
        row = await stores.set_attributes(principal.project or "", store_id, file_id, spec.attributes)
        if row is None:
            raise NotFound(f"No file '{file_id}' in vector store '{store_id}'", param="file_id")
        return store_file_object(row)

    @router.delete("/{store_id}/files/{file_id}")
    async def remove_file(store_id: str, file_id: str, principal: Caller) -> dict[str, Any]:
        await owned(principal, store_id)
        if not await stores.remove_file(principal.project or "", store_id, file_id):
            raise NotFound(f"No file '{file_id}' in vector store '{store_id}'", param="file_id")
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    @router.get("/{store_id}/files/{file_id}/content")
    async def file_content(store_id: str, file_id: str, principal: Caller) -> dict[str, Any]:
        await owned_file(principal, store_id, file_id)
        found = await files.content(principal.project or "", file_id)
        data = []
        if found is not None:
            try:
                data = [{"type": "text", "text": await asyncio.to_thread(extract_text, *found)}]
            except FileError:
                data = []
        return {"object": "vector_store.file_content.page", "data": data, "has_more": False, "next_page": None}

    @router.post("/{store_id}/search")
    async def search(store_id: str, spec: SearchIn, principal: Caller) -> dict[str, Any]:
        queries = _queries(spec.query)
        where = None if spec.filters is None else parse_filter(spec.filters)
        ranking = parse_ranking(spec.ranking_options)
        rows = await searcher.usable(principal.project or "", [store_id], "vector_store_id")
        hits = await searcher.search(principal, rows, queries, where, spec.max_num_results, ranking)
        return {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [hit_object(hit) for hit in hits],
            "has_more": False,
            "next_page": None,
        }

    app.include_router(router)

"""OpenAI's Files API under /v1/files: multipart upload, list, get, content, delete (per project)."""

# No `from __future__ import annotations`: FastAPI must see the route signatures' `Caller` (an
# Annotated dependency made inside add_routes) as an object, not a name to look up in the module.

import datetime as dt
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response
from starlette.types import Message

from openfoundry.errors import InvalidRequest, NotFound, PayloadTooLarge
from openfoundry.gateway import Gateway
from openfoundry.store.files import FileStore, Page, epoch, now
from openfoundry.tenancy.auth import Principal

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_MULTIPART_SLACK = 64 * 1024
"""Bytes a multipart body may carry beyond the file itself (boundaries, part headers, purpose)."""
_EXPIRY_SECONDS = (3600, 2_592_000)


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": epoch(row["created_at"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "status_details": None,
        "expires_at": epoch(row["expires_at"]),
    }


def list_page(data: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    """A cursor page as OpenAI's lists give it."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }


async def bounded_form(request: Request, limit: int) -> FormData:
    """The multipart form, refused with 413 as soon as the body passes `limit` (plus the multipart
    framing); the file part is spooled to disk by Starlette, not held in memory."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("upload files as multipart/form-data with the fields 'file' and 'purpose'")
    ceiling = limit + _MULTIPART_SLACK
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > ceiling:
        raise PayloadTooLarge(f"the file passes the limit of {limit} bytes", code="file_too_large")
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > ceiling:
            raise PayloadTooLarge(f"the file passes the limit of {limit} bytes", code="file_too_large")
        return message

    return await Request(request.scope, receive).form(max_files=1, max_fields=16)


def _expiry(form: FormData) -> dt.datetime | None:
    anchor, seconds = form.get("expires_after[anchor]"), form.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    low, high = _EXPIRY_SECONDS
    if (
        anchor != "created_at"
        or not isinstance(seconds, str)
        or not seconds.isdigit()
        or not low <= int(seconds) <= high
    ):
        raise InvalidRequest(
            f"'expires_after' needs anchor 'created_at' and seconds from {low} to {high}", param="expires_after"
        )
    return now() + dt.timedelta(seconds=int(seconds))


async def _read_upload(form: FormData, limit: int) -> tuple[str, str, bytes, dt.datetime | None]:
    upload, purpose = form.get("file"), form.get("purpose")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("send the file in the multipart field 'file'", param="file")
    if purpose not in PURPOSES:
        raise InvalidRequest(f"'purpose' must be one of {', '.join(PURPOSES)}", param="purpose")
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(f"the file is {upload.size} bytes; the limit is {limit}", code="file_too_large")
    content = await upload.read()
    if len(content) > limit:
        raise PayloadTooLarge(f"the file is {len(content)} bytes; the limit is {limit}", code="file_too_large")
    filename = PurePosixPath((upload.filename or "upload").replace("\\", "/")).name or "upload"
    return filename[:1024], str(purpose), content, _expiry(form)


def add_routes(app: FastAPI, gateway: Gateway, files: FileStore, max_file_bytes: int) -> None:
    def caller(request: Request) -> Principal:
        return gateway.authenticate(request.headers)

    Caller = Annotated[Principal, Depends(caller)]
    router = APIRouter(prefix="/v1/files", tags=["files"])
    multipart = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "purpose"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "purpose": {"type": "string", "enum": list(PURPOSES)},
                        },
                    }
                }
            },
        }
    }

    @router.post("", openapi_extra=multipart)
    async def upload_file(request: Request, principal: Caller) -> dict[str, Any]:
        form = await bounded_form(request, max_file_bytes)
        try:
            filename, purpose, content, expires = await _read_upload(form, max_file_bytes)
        finally:
            await form.close()
        return file_object(await files.add(principal.project or "", filename, purpose, content, expires))

    @router.get("")
    async def list_files(
        principal: Caller,
        purpose: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
    ) -> dict[str, Any]:
        rows, more = await files.list_files(principal.project or "", purpose, Page(limit, order, after))
        return list_page([file_object(row) for row in rows], more)

    @router.get("/{file_id}")
    async def get_file(file_id: str, principal: Caller) -> dict[str, Any]:
        row = await files.get(principal.project or "", file_id)
        if row is None:
            raise NotFound(f"No file found with id '{file_id}'", param="file_id")
        return file_object(row)

    @router.get("/{file_id}/content", response_class=Response)
    async def file_content(file_id: str, principal: Caller) -> Response:
        found = await files.content(principal.project or "", file_id)
        if found is None:
            raise NotFound(f"No file found with id '{file_id}'", param="file_id")
        return Response(found[1], media_type="application/octet-stream")

    @router.delete("/{file_id}")
    async def delete_file(file_id: str, principal: Caller) -> dict[str, Any]:
        if not await files.delete(principal.project or "", file_id):
            raise NotFound(f"No file found with id '{file_id}'", param="file_id")
        return {"id": file_id, "object": "file", "deleted": True}

    app.include_router(router)

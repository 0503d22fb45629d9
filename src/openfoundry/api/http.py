"""What every surface shares: bounded body reading, JSON parsing, and error rendering."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from openfoundry.errors import FoundryError, InvalidRequest, PayloadTooLarge, error_type_for_status
from openfoundry.gateway import Outcome

log = logging.getLogger("openfoundry")
_PATH_PARAMETER = re.compile(r"\{([^}]+)\}")
T = TypeVar("T")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    if declared is not None:
        return await request.body()
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"request body passes the limit of {limit} bytes")
        parts.append(part)
    return b"".join(parts)


def parse_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    return body


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def answer(outcome: Outcome, chunks: AsyncIterator[bytes] | None = None, body: bytes | None = None) -> Response:
    """The HTTP answer for a served call: its JSON, or its stream (or the surface's versions of them), with
    the rate-limit headers and who served it (added as bytes: this runs on every call)."""
    stream = chunks if chunks is not None else outcome.chunks
    if stream is not None:
        response: Response = StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
    else:
        response = Response(body if body is not None else outcome.body, media_type="application/json")
    response.raw_headers += outcome.headers
    response.raw_headers += (
        (b"x-foundry-deployment", outcome.deployment.name.encode()),
        (b"x-foundry-backend", outcome.backend.provider.encode()),
    )
    return response


def openai_error(exc: FoundryError) -> Response:
    return Response(exc.openai_body(), exc.status, headers=exc.headers, media_type="application/json")


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client goes away first (so the upstream call stops too)."""
    current = asyncio.current_task()
    assert current is not None

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        current.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    finally:
        watcher.cancel()


def add_raw_route(
    app: FastAPI,
    path: str,
    endpoint: Callable[[Request], Awaitable[Response]],
    method: str,
    *,
    tag: str,
    body: dict[str, Any] | None = None,
) -> None:
    """A hot route as a plain Starlette route (FastAPI's per-request parameter handling costs ~20% of
    throughput here), still described in /openapi.json."""
    app.router.routes.append(Route(path, endpoint, methods=[method]))
    operation: dict[str, Any] = {
        "tags": [tag],
        "operationId": endpoint.__name__,
        "responses": {"200": {"description": "The answer, as JSON or as a text/event-stream"}},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    parameters = [
        {"name": name.split(":")[0], "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(path)
    ]
    if parameters:
        operation["parameters"] = parameters
    documented = _PATH_PARAMETER.sub(lambda match: "{" + match.group(1).split(":")[0] + "}", path)
    _raw_operations(app).setdefault(documented, {})[method.lower()] = operation


def _raw_operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    """The OpenAPI paths of raw routes, merged into the generated document on first use."""
    operations: dict[str, dict[str, Any]] | None = getattr(app.state, "raw_operations", None)
    if operations is None:
        operations = app.state.raw_operations = {}
        generate = app.openapi

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is None:
                schema = generate()
                for path, methods in operations.items():
                    schema["paths"].setdefault(path, {}).update(methods)
            return app.openapi_schema or {}

        app.openapi = openapi  # type: ignore[method-assign]
    return operations


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves in the OpenAI shape, including the framework's own 404/405/422."""

    async def foundry(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, FoundryError)
        return openai_error(exc)

    async def http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        error = FoundryError(
            str(exc.detail), status=exc.status_code, type=error_type_for_status(exc.status_code), code=code
        )
        return openai_error(error)

    async def validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part != "body")
        if first.get("type") == "json_invalid":
            return openai_error(InvalidRequest("the request body is not valid JSON", code="invalid_json"))
        return openai_error(InvalidRequest(f"{where}: {first['msg']}", param=where or None, code="invalid_value"))

    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return openai_error(FoundryError("internal error; the server log has the details"))

    app.add_exception_handler(FoundryError, foundry)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(Exception, unexpected)

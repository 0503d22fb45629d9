"""OpenAI's Responses API under /v1/responses: create (whole, streamed or in the background),
retrieve, delete, cancel, and the input items of a stored response."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from openfoundry.agents.events import encode
from openfoundry.agents.items import public_items
from openfoundry.agents.response import public_response
from openfoundry.agents.runner import Runner
from openfoundry.api.files import list_page
from openfoundry.api.http import SSE_HEADERS, add_raw_route, parse_object, read_body, until_disconnect
from openfoundry.errors import InvalidRequest, NotFound
from openfoundry.gateway import Gateway
from openfoundry.store.files import Page
from openfoundry.store.responses import ResponseStore


def json_answer(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def page_params(request: Request) -> Page:
    """`after`, `limit` (1-100, default 20) and `order` (asc|desc, default desc) of a cursor list."""
    query = request.query_params
    limit_text = query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        raise InvalidRequest("'limit' must be an integer from 1 to 100", param="limit", code="invalid_value")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be asc or desc", param="order", code="invalid_value")
    return Page(int(limit_text), "asc" if order == "asc" else "desc", query.get("after") or None)


def add_routes(app: FastAPI, gateway: Gateway, runner: Runner, responses: ResponseStore, max_body_bytes: int) -> None:
    """The handlers raise FoundryError freely: api/http.py's handlers render it in OpenAI's shape."""

    async def create_response(request: Request) -> Response:
        principal = gateway.authenticate(request.headers)
        run = await runner.prepare(principal, parse_object(await read_body(request, max_body_bytes)))
        if run.request.background:
            return json_answer(await runner.start_background(run))
        if run.request.stream:
            return StreamingResponse(_sse(runner.stream(run)), media_type="text/event-stream", headers=SSE_HEADERS)
        return json_answer(await until_disconnect(request, runner.complete(run)))

    async def get_response(request: Request) -> Response:
        project, response_id = _target(request)
        if request.query_params.get("stream") == "true":
            raise InvalidRequest("streaming a stored response again is not supported", param="stream")
        found = await responses.get(project, response_id)
        if found is None:
            raise _not_found(response_id)
        return json_answer(public_response(found))

    async def delete_response(request: Request) -> Response:
        project, response_id = _target(request)
        if not await responses.delete(project, response_id):
            raise _not_found(response_id)
        return json_answer({"id": response_id, "object": "response", "deleted": True})

    async def cancel_response(request: Request) -> Response:
        principal = gateway.authenticate(request.headers)
        return json_answer(await runner.cancel(principal, request.path_params["response_id"]))

    async def list_input_items(request: Request) -> Response:
        project, response_id = _target(request)
        found = await responses.input_items(project, response_id, page_params(request))
        if found is None:
            raise _not_found(response_id)
        items, more = found
        return json_answer(list_page(public_items(items), more))

    def _target(request: Request) -> tuple[str, str]:
        principal = gateway.authenticate(request.headers)
        return principal.project or "", request.path_params["response_id"]

    body_schema = {"type": "object", "required": ["model"], "additionalProperties": True}
    add_raw_route(app, "/v1/responses", create_response, "POST", tag="responses", body=body_schema)
    add_raw_route(app, "/v1/responses/{response_id}", get_response, "GET", tag="responses")
    add_raw_route(app, "/v1/responses/{response_id}", delete_response, "DELETE", tag="responses")
    add_raw_route(app, "/v1/responses/{response_id}/cancel", cancel_response, "POST", tag="responses")
    add_raw_route(app, "/v1/responses/{response_id}/input_items", list_input_items, "GET", tag="responses")


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"No response found with id '{response_id}'.", param="response_id")


async def _sse(events: AsyncGenerator[dict[str, Any], None]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield encode(event)
    finally:
        await events.aclose()  # a client gone mid-stream stops the run

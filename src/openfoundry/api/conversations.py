"""OpenAI's Conversations API under /v1/conversations: conversations and their items, per project."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openfoundry.agents.items import new_id, normalise, public_items
from openfoundry.agents.request import check_metadata
from openfoundry.api.files import list_page
from openfoundry.api.http import add_raw_route, parse_object, read_body
from openfoundry.api.responses import json_answer, page_params
from openfoundry.errors import InvalidRequest, NotFound
from openfoundry.gateway import Gateway
from openfoundry.store.conversations import ConversationStore
from openfoundry.store.files import epoch

MAX_ITEMS_PER_CALL = 20


def conversation_object(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "object": "conversation", "created_at": epoch(row["created_at"]), "metadata": row["meta"]}


def checked_items(value: Any, param: str = "items") -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be an array of items", param=param, code="invalid_type")
    if len(value) > MAX_ITEMS_PER_CALL:
        raise InvalidRequest(
            f"'{param}' may hold at most {MAX_ITEMS_PER_CALL} items per call", param=param, code="invalid_value"
        )
    items = [normalise(entry, f"{param}[{index}]") for index, entry in enumerate(value)]
    for index, item in enumerate(items):
        if item["type"] == "item_reference":
            raise InvalidRequest("item_reference items cannot be added to a conversation", param=f"{param}[{index}]")
    return items


class _Routes:
    """The handlers; a FoundryError raised here leaves in OpenAI's shape (api/http.py's handlers)."""

    def __init__(self, gateway: Gateway, conversations: ConversationStore, max_body_bytes: int) -> None:
        self.gateway = gateway
        self.conversations = conversations
        self.max_body_bytes = max_body_bytes

    async def create_conversation(self, request: Request) -> Response:
        project = self._owner(request)
        body = await self._body(request)
        items = checked_items(body["items"]) if body.get("items") is not None else []
        metadata = check_metadata(body.get("metadata"))
        return json_answer(
            conversation_object(await self.conversations.create(project, new_id("conv"), metadata, items))
        )

    async def get_conversation(self, request: Request) -> Response:
        return json_answer(conversation_object(await self._conversation(request)))

    async def update_conversation(self, request: Request) -> Response:
        project, conversation_id = self._owner(request), request.path_params["conversation_id"]
        body = await self._body(request)
        if "metadata" not in body:
            raise InvalidRequest("missing required parameter: 'metadata'", param="metadata")
        row = await self.conversations.update(project, conversation_id, check_metadata(body["metadata"]))
        if row is None:
            raise _not_found(conversation_id)
        return json_answer(conversation_object(row))

    async def delete_conversation(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        if not await self.conversations.delete(self._owner(request), conversation_id):
            raise _not_found(conversation_id)
        return json_answer({"id": conversation_id, "object": "conversation.deleted", "deleted": True})

    async def add_conversation_items(self, request: Request) -> Response:
        project, conversation_id = self._owner(request), request.path_params["conversation_id"]
        items = checked_items((await self._body(request)).get("items"))
        if not await self.conversations.append(project, conversation_id, items):
            raise _not_found(conversation_id)
        return json_answer(list_page(public_items(items), False))

    async def list_conversation_items(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        found = await self.conversations.page(self._owner(request), conversation_id, page_params(request))
        if found is None:
            raise _not_found(conversation_id)
        items, more = found
        return json_answer(list_page(public_items(items), more))

    async def get_conversation_item(self, request: Request) -> Response:
        conversation_id, item_id = request.path_params["conversation_id"], request.path_params["item_id"]
        item = await self.conversations.item(self._owner(request), conversation_id, item_id)
        if item is None:
            raise _item_not_found(conversation_id, item_id)
        return json_answer(public_items([item])[0])

    async def delete_conversation_item(self, request: Request) -> Response:
        conversation_id, item_id = request.path_params["conversation_id"], request.path_params["item_id"]
        if not await self.conversations.delete_item(self._owner(request), conversation_id, item_id):
            raise _item_not_found(conversation_id, item_id)
        return json_answer(conversation_object(await self._conversation(request)))

    def _owner(self, request: Request) -> str:
        return self.gateway.authenticate(request.headers).project or ""

    async def _body(self, request: Request) -> dict[str, Any]:
        return parse_object(await read_body(request, self.max_body_bytes))

    async def _conversation(self, request: Request) -> dict[str, Any]:
        conversation_id = request.path_params["conversation_id"]
        row = await self.conversations.get(self._owner(request), conversation_id)
        if row is None:
            raise _not_found(conversation_id)
        return row


def add_routes(app: FastAPI, gateway: Gateway, conversations: ConversationStore, max_body_bytes: int) -> None:
    routes = _Routes(gateway, conversations, max_body_bytes)
    one, item = "/v1/conversations/{conversation_id}", "/v1/conversations/{conversation_id}/items/{item_id}"
    body = {"type": "object"}
    add_raw_route(app, "/v1/conversations", routes.create_conversation, "POST", tag="conversations", body=body)
    add_raw_route(app, one, routes.get_conversation, "GET", tag="conversations")
    add_raw_route(app, one, routes.update_conversation, "POST", tag="conversations", body=body)
    add_raw_route(app, one, routes.delete_conversation, "DELETE", tag="conversations")
    add_raw_route(app, one + "/items", routes.add_conversation_items, "POST", tag="conversations", body=body)
    add_raw_route(app, one + "/items", routes.list_conversation_items, "GET", tag="conversations")
    add_raw_route(app, item, routes.get_conversation_item, "GET", tag="conversations")
    add_raw_route(app, item, routes.delete_conversation_item, "DELETE", tag="conversations")


def _not_found(conversation_id: str) -> NotFound:
    return NotFound(f"No conversation found with id '{conversation_id}'.", param="conversation_id")


def _item_not_found(conversation_id: str, item_id: str) -> NotFound:
    return NotFound(f"No item found with id '{item_id}' in conversation '{conversation_id}'.", param="item_id")

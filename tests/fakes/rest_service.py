"""A small orders/inventory REST service with its OpenAPI 3.0 document, for the openapi tool's tests.

Every route wants the API key (`X-Api-Key: KEY`, `?api_key=KEY` or `Authorization: Bearer KEY`).
`/old-orders/{id}` redirects to `/orders/{id}` on the same origin; `/moved` to `app["redirect"]["moved_to"]`;
`/export` to the cloud metadata address (the SSRF case); `/loop` to itself forever; `/catalog`
answers 1 MB.
Every request that reaches a handler is kept in `app["seen"]`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.server import new_app

API_KEY = "rest-secret-key"
METADATA_URL = "http://169.254.169.254/latest/meta-data/"
CATALOG_BYTES = 1_000_000


def create(api_key: str = API_KEY) -> web.Application:
    app = new_app()
    app["key"] = api_key
    app["seen"] = []
    app["redirect"] = {"moved_to": "/orders/A-1"}
    app.middlewares.append(_require_key)
    app.router.add_get("/orders/{order_id}", get_order)
    app.router.add_post("/orders", create_order)
    app.router.add_get("/inventory/{sku}", get_inventory)
    app.router.add_get("/old-orders/{order_id}", old_order)
    app.router.add_get("/moved", moved)
    app.router.add_get("/export", export)
    app.router.add_get("/loop", loop)
    app.router.add_get("/catalog", catalog)
    return app


@web.middleware
async def _require_key(request: web.Request, handler: Any) -> web.StreamResponse:
    key = request.app["key"]
    presented = {request.headers.get("X-Api-Key"), request.query.get("api_key"), request.headers.get("Authorization")}
    if not presented & {key, f"Bearer {key}"}:
        return web.json_response({"error": "missing or wrong API key"}, status=401)
    request.app["seen"].append(
        {
            "method": request.method,
            "path": request.raw_path,
            "headers": dict(request.headers),
            "query": dict(request.query),
        }
    )
    response: web.StreamResponse = await handler(request)
    return response


async def get_order(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    if order_id == "missing":
        return web.json_response({"error": f"no order {order_id}"}, status=404)
    return web.json_response({"id": order_id, "item": "widget", "quantity": 3, "status": "shipped"})


async def create_order(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"id": "A-100", "status": "created", **body}, status=201)


async def get_inventory(request: web.Request) -> web.Response:
    sku = request.match_info["sku"]
    warehouse = request.query.get("warehouse", "main")
    return web.json_response({"sku": sku, "warehouse": warehouse, "in_stock": 12})


async def old_order(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(f"/orders/{request.match_info['order_id']}")


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPTemporaryRedirect(request.app["redirect"]["moved_to"])


async def export(_: web.Request) -> web.Response:
    raise web.HTTPFound(METADATA_URL)


async def loop(_: web.Request) -> web.Response:
    raise web.HTTPTemporaryRedirect("/loop")


async def catalog(_: web.Request) -> web.Response:
    return web.Response(text="w" * CATALOG_BYTES)


def openapi_spec(base_url: str) -> dict[str, Any]:
    """The service's OpenAPI 3.0 document, with shared schemas and parameters behind $refs."""
    order_id = {"$ref": "#/components/parameters/OrderId"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Orders", "version": "1.0"},
        "servers": [{"url": base_url}],
        "paths": {
            "/orders/{order_id}": {
                "parameters": [order_id],
                "get": {"operationId": "getOrder", "summary": "Get one order", "responses": _ok("Order")},
            },
            "/orders": {
                "post": {
                    "operationId": "createOrder",
                    "summary": "Place an order",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewOrder"}}},
                    },
                    "responses": _ok("Order"),
                }
            },
            "/inventory/{sku}": {
                "get": {
                    "summary": "Stock of one article",
                    "parameters": [
                        {"name": "sku", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "warehouse", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "Stock"}},
                }
            },
            "/old-orders/{order_id}": {
                "get": {"operationId": "getOldOrder", "parameters": [order_id], "responses": {}}
            },
            "/moved": {"get": {"operationId": "moved", "responses": {}}},
            "/export": {"get": {"operationId": "exportOrders", "responses": {}}},
            "/loop": {"get": {"operationId": "loop", "responses": {}}},
            "/catalog": {"get": {"operationId": "getCatalog", "responses": {}}},
        },
        "components": {
            "parameters": {
                "OrderId": {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}
            },
            "schemas": {
                "NewOrder": {
                    "type": "object",
                    "properties": {"item": {"type": "string"}, "quantity": {"$ref": "#/components/schemas/Quantity"}},
                    "required": ["item", "quantity"],
                },
                "Quantity": {"type": "integer", "minimum": 1},
                "Order": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "status": {"type": "string"}},
                },
            },
        },
    }


def _ok(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}

"""OpenAPI connectors: documents turned into operations, and the admin API that registers them."""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

import pytest
import yaml

from openfoundry.agents.connectors import load_document, parse_spec
from openfoundry.errors import InvalidRequest
from tests.api.test_admin import call
from tests.fakes.rest_service import openapi_spec
from tests.harness import Server

BASE = "http://127.0.0.1:9/api"


def operations(document: dict[str, Any], base_url: str | None = None) -> dict[str, Any]:
    return {operation.name: operation for operation in parse_spec(document, base_url).operations}


def test_every_operation_becomes_one_with_its_parameters_and_json_body() -> None:
    found = operations(openapi_spec(BASE))
    assert sorted(found) == sorted(
        ["getOrder", "createOrder", "get_inventory_sku", "getOldOrder", "moved", "exportOrders", "loop", "getCatalog"]
    )
    get_order = found["getOrder"]
    assert (get_order.method, get_order.path, get_order.description) == ("GET", "/orders/{order_id}", "Get one order")
    assert get_order.schema == {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    }
    create_order = found["createOrder"]
    assert create_order.body_key == "body"
    assert create_order.schema["required"] == ["body"]
    body = create_order.schema["properties"]["body"]
    assert body["properties"]["quantity"] == {"type": "integer", "minimum": 1}, "nested $ref inlined"
    assert "$ref" not in json.dumps(create_order.schema)


def test_an_operation_without_an_operation_id_is_named_from_method_and_path() -> None:
    inventory = operations(openapi_spec(BASE))["get_inventory_sku"]
    assert inventory.schema["required"] == ["sku"]
    assert set(inventory.schema["properties"]) == {"sku", "warehouse"}


def test_requests_substitute_and_encode_path_parameters_and_add_the_query() -> None:
    found = operations(openapi_spec(BASE))
    request = found["get_inventory_sku"].request(BASE, {"sku": "a/b c?", "warehouse": "north & south"})
    assert request.url == BASE + "/inventory/a%2Fb%20c%3F?warehouse=north%20%26%20south"
    assert (request.method, request.json, request.headers) == ("GET", None, {})
    post = found["createOrder"].request(BASE, {"body": {"item": "widget", "quantity": 2}})
    assert (post.method, post.url, post.json) == ("POST", BASE + "/orders", {"item": "widget", "quantity": 2})
    with pytest.raises(ValueError, match="order_id"):
        found["getOrder"].request(BASE, {})


def test_header_parameters_lists_and_a_body_named_parameter() -> None:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Search"},
        "servers": [
            {
                "url": "https://{region}.example.com/v{version}",
                "variables": {"region": {"default": "eu"}, "version": {"default": "2"}},
            }
        ],
        "paths": {
            "/search": {
                "post": {
                    "operationId": "search",
                    "parameters": [
                        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}, "description": "trace id"},
                        {"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                        {"name": "body", "in": "query", "schema": {"type": "boolean"}},
                        {"name": "session", "in": "cookie", "schema": {"type": "string"}},
                    ],
                    "requestBody": {"content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
                }
            }
        },
    }
    spec = parse_spec(document)
    assert spec.server_url == "https://eu.example.com/v2"
    search = spec.operations[0]
    assert search.body_key == "request_body"
    assert search.schema["properties"]["X-Trace"] == {"type": "string", "description": "trace id"}
    assert "session" not in search.schema["properties"], "an optional cookie parameter is left out"
    request = search.request(spec.server_url, {"X-Trace": "t1", "tag": ["a", "b"], "body": True, "request_body": {}})
    assert request.url == "https://eu.example.com/v2/search?tag=a&tag=b&body=true"
    assert (request.headers, request.json) == ({"X-Trace": "t1"}, {})


def test_recursive_schemas_are_left_open_where_they_recur() -> None:
    document = openapi_spec(BASE)
    document["components"]["schemas"]["NewOrder"]["properties"]["parent"] = {"$ref": "#/components/schemas/NewOrder"}
    body = operations(document)["createOrder"].schema["properties"]["body"]
    assert body["properties"]["parent"] == {}
    assert body["properties"]["item"] == {"type": "string"}


def test_operations_that_cannot_be_called_are_skipped_with_the_reason() -> None:
    document = openapi_spec(BASE)
    document["paths"]["/upload"] = {
        "post": {"operationId": "upload", "requestBody": {"content": {"multipart/form-data": {"schema": {}}}}}
    }
    spec = parse_spec(document)
    assert "upload" not in {operation.name for operation in spec.operations}
    assert spec.skipped == [
        {"operation": "POST /upload", "reason": "the request body is not JSON (multipart/form-data)"}
    ]


def invalid(document: Any, base_url: str | None = None) -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse_spec(load_document(document), base_url)
    assert caught.value.status == 400 and caught.value.param == "spec"
    return caught.value.message


def test_documents_that_are_not_openapi_3_are_refused_clearly() -> None:
    assert "Swagger 2.0" in invalid({"swagger": "2.0", "paths": {}})
    assert "not an OpenAPI 3.x document" in invalid({"hello": "world"})
    assert "neither JSON nor YAML" in invalid("openapi: [3.0")
    assert "an object" in invalid("just text")
    assert "no `paths`" in invalid({"openapi": "3.0.0"})


def test_a_document_without_operations_is_refused() -> None:
    assert "no operations" in invalid({"openapi": "3.0.0", "servers": [{"url": BASE}], "paths": {}})
    assert "no operations" in invalid({"openapi": "3.0.0", "servers": [{"url": BASE}], "paths": {"/a": {}}})


def test_bad_references_duplicate_ids_and_missing_servers_are_refused() -> None:
    document = openapi_spec(BASE)
    document["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/Nope"
    }
    assert "points to nothing" in invalid(document)
    document = openapi_spec(BASE)
    document["paths"]["/orders"]["post"]["requestBody"] = {"$ref": "other.yaml#/Body"}
    assert "only references within the document" in invalid(document)
    document = openapi_spec(BASE)
    document["paths"]["/loop"]["get"]["operationId"] = "getOrder"
    assert "used by more than one operation" in invalid(document)
    document = openapi_spec(BASE)
    del document["servers"]
    assert "give base_url" in invalid(document)
    document["servers"] = [{"url": "/relative"}]
    assert "not an absolute http(s) URL" in invalid(document)
    assert parse_spec(document, "https://api.example.com/").server_url == "https://api.example.com"


def test_reference_bombs_are_refused() -> None:
    schemas: dict[str, Any] = {"L0": {"type": "string"}}
    for level in range(1, 30):
        below = {"$ref": f"#/components/schemas/L{level - 1}"}
        schemas[f"L{level}"] = {"type": "object", "properties": {"a": below, "b": below}}
    document = {
        "openapi": "3.0.0",
        "servers": [{"url": BASE}],
        "components": {"schemas": schemas},
        "paths": {
            "/x": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/L29"}}}}
                }
            }
        },
    }
    assert "grows past" in invalid(document)


def test_yaml_text_is_accepted_and_made_json_compatible() -> None:
    document = openapi_spec(BASE)
    document["info"]["x-released"] = "2024-05-01"
    text = yaml.safe_dump(document).replace("'2024-05-01'", "2024-05-01")
    loaded = load_document(text)
    assert loaded["info"]["x-released"] == "2024-05-01"
    assert loaded["paths"] == copy.deepcopy(document)["paths"]


# The admin API, against the shared gateway.


def register(server: Server, **fields: Any) -> tuple[int, Any]:
    body = {"name": f"c-{secrets.token_hex(4)}", "spec": openapi_spec(BASE), **fields}
    return call(server, "POST", "/admin/connectors", body)


def test_registering_a_connector_lists_its_operations_without_the_credential(server: Server) -> None:
    status, created = register(server, auth={"type": "api_key", "name": "X-Api-Key", "value": "very-secret-value"})
    assert status == 201, created
    assert created["server_url"] == BASE and created["title"] == "Orders"
    assert created["auth"] == {"type": "api_key", "name": "X-Api-Key", "in": "header"}
    assert {op["name"]: op["function"] for op in created["operations"]}["getOrder"] == f"{created['name']}__getOrder"
    shown = call(server, "GET", f"/admin/connectors/{created['name']}")
    listed = call(server, "GET", "/admin/connectors")
    assert shown == (200, created)
    assert any(entry["name"] == created["name"] and entry["operation_count"] == 8 for entry in listed[1]["data"])
    for answer in (created, shown[1], listed[1]):
        assert "very-secret-value" not in json.dumps(answer)
    assert "very-secret-value" not in server.log.read_text()


def test_a_bearer_connector_from_yaml_text_with_a_base_url(server: Server) -> None:
    text = yaml.safe_dump(openapi_spec("/relative"))
    status, created = register(
        server, spec=text, base_url="https://orders.example.com/v1", auth={"type": "bearer", "token": "tok-123"}
    )
    assert status == 201, created
    assert created["server_url"] == "https://orders.example.com/v1"
    assert created["auth"] == {"type": "bearer"}
    assert "tok-123" not in json.dumps(created)


def test_bad_connectors_get_clear_400s_and_names_are_unique(server: Server) -> None:
    status, body = register(server, spec={"swagger": "2.0"})
    assert status == 400 and "Swagger 2.0" in body["error"]["message"]
    status, body = register(server, auth={"type": "api_key", "name": "k", "in": "cookie", "value": "secret-in-cookie"})
    assert status == 400 and "secret-in-cookie" not in json.dumps(body)
    status, body = register(server, auth={"type": "oauth"})
    assert status == 400
    status, body = register(server, name="bad name!")
    assert status == 400
    status, created = register(server)
    assert status == 201
    status, body = register(server, name=created["name"])
    assert status == 409 and body["error"]["code"] == "connector_exists"


def test_deleting_a_connector(server: Server) -> None:
    status, created = register(server)
    assert status == 201
    assert call(server, "DELETE", f"/admin/connectors/{created['name']}") == (
        200,
        {"object": "connector.deleted", "name": created["name"], "deleted": True},
    )
    status, body = call(server, "GET", f"/admin/connectors/{created['name']}")
    assert status == 404 and body["error"]["code"] == "connector_not_found"
    assert call(server, "DELETE", f"/admin/connectors/{created['name']}")[0] == 404


def test_connectors_are_for_the_admin_key_only(server: Server) -> None:
    assert call(server, "GET", "/admin/connectors", key=None)[0] == 401
    assert (
        call(server, "POST", "/admin/connectors", {"name": "x", "spec": openapi_spec(BASE)}, key="sk-nobody")[0] == 401
    )

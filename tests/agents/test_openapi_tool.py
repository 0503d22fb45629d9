"""The openapi tool on its own: a connector in the database, calls to a real REST service, its
credential, redirects checked hop by hop, limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from openfoundry.agents.tools.base import ToolContext
from openfoundry.agents.tools.openapi import OpenApiTool, OpenApiTools
from openfoundry.config import AgentSettings
from openfoundry.errors import InvalidRequest
from openfoundry.store.connectors import ConnectorStore
from openfoundry.store.db import Database
from openfoundry.tenancy.auth import Principal
from tests.fakes import rest_service
from tests.fakes.server import FakeServer

KEY_HEADER = {"type": "api_key", "name": "X-Api-Key", "in": "header", "value": rest_service.API_KEY}


@pytest.fixture(scope="module")
def rest() -> Iterator[FakeServer]:
    server = FakeServer(rest_service.create()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other_rest() -> Iterator[FakeServer]:
    """Another origin, wanting the same key."""
    server = FakeServer(rest_service.create()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory, rest: FakeServer) -> AsyncIterator[ConnectorStore]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('openapi')}/foundry.db")
    await db.migrate()
    store = ConnectorStore(db)
    spec = rest_service.openapi_spec(rest.url)
    await store.create("orders", spec, None, KEY_HEADER)
    await store.create("orders_query", spec, None, {**KEY_HEADER, "name": "api_key", "in": "query"})
    await store.create("orders_bearer", spec, None, {"type": "bearer", "token": rest_service.API_KEY})
    await store.create("orders_open", spec, None, {"type": "none"})
    yield store
    await db.close()


def host(server: FakeServer) -> str:
    return f"127.0.0.1:{server.port}"


async def tool(store: ConnectorStore, rest: FakeServer, connector: str = "orders", **settings: Any) -> OpenApiTool:
    agents = AgentSettings(**{"tool_hosts_allowlist": [host(rest)], **settings})
    made = await OpenApiTools(store)({"type": "openapi", "connector": connector}, ToolContext(Principal(False), agents))
    assert await made.prepare() == []
    return made


async def test_each_operation_is_a_function_named_after_the_connector(store: ConnectorStore, rest: FakeServer) -> None:
    orders = await tool(store, rest)
    functions = {f["function"]["name"]: f["function"] for f in orders.functions()}
    assert "orders__getOrder" in functions and "orders__get_inventory_sku" in functions
    assert functions["orders__getOrder"]["description"] == "Get one order"
    assert functions["orders__createOrder"]["parameters"]["required"] == ["body"]
    assert orders.owns("orders__getOrder") and not orders.owns("getOrder")
    assert not orders.approval_needed("orders__getOrder")


async def test_a_call_reaches_the_service_with_the_key(store: ConnectorStore, rest: FakeServer) -> None:
    orders = await tool(store, rest)
    result = await orders.call("orders__getOrder", '{"order_id": "A-17"}', "oapi_1")
    assert result.output.startswith("HTTP 200\n") and '"id": "A-17"' in result.output
    assert result.item == {
        "type": "openapi_call",
        "id": "oapi_1",
        "connector": "orders",
        "name": "getOrder",
        "arguments": '{"order_id": "A-17"}',
        "status": "completed",
        "output": result.output,
        "error": None,
    }
    seen = rest.app["seen"][-1]
    assert seen["path"] == "/orders/A-17" and seen["headers"]["X-Api-Key"] == rest_service.API_KEY
    assert seen["headers"]["Host"] == host(rest)


@pytest.mark.parametrize("connector", ["orders_query", "orders_bearer"])
async def test_each_kind_of_credential_is_sent(store: ConnectorStore, rest: FakeServer, connector: str) -> None:
    result = await (await tool(store, rest, connector)).call(
        f"{connector}__get_inventory_sku", '{"sku": "w/1", "warehouse": "north"}', "oapi_1"
    )
    assert result.output.startswith("HTTP 200\n"), result.output
    assert rest.app["seen"][-1]["path"].startswith("/inventory/w%2F1?")
    assert rest.app["seen"][-1]["query"]["warehouse"] == "north"


async def test_error_statuses_are_output_for_the_model(store: ConnectorStore, rest: FakeServer) -> None:
    missing = await (await tool(store, rest)).call("orders__getOrder", '{"order_id": "missing"}', "oapi_1")
    assert missing.item["status"] == "completed" and missing.output.startswith("HTTP 404\n")
    unauthorized = await (await tool(store, rest, "orders_open")).call(
        "orders_open__getOrder", '{"order_id": "A-1"}', "oapi_2"
    )
    assert unauthorized.output.startswith("HTTP 401\n")


async def test_a_json_body_is_posted(store: ConnectorStore, rest: FakeServer) -> None:
    result = await (await tool(store, rest)).call(
        "orders__createOrder", '{"body": {"item": "gadget", "quantity": 2}}', "oapi_1"
    )
    assert result.output.startswith("HTTP 201\n") and '"item": "gadget"' in result.output


async def test_bad_arguments_are_a_failed_item(store: ConnectorStore, rest: FakeServer) -> None:
    orders = await tool(store, rest)
    assert "missing required argument(s): order_id" in (await orders.call("orders__getOrder", "{}", "o1")).item["error"]
    assert "not valid JSON" in (await orders.call("orders__getOrder", "{oops", "o2")).item["error"]


async def test_redirects_on_the_same_origin_are_followed_with_the_key(store: ConnectorStore, rest: FakeServer) -> None:
    result = await (await tool(store, rest)).call("orders__getOldOrder", '{"order_id": "B-2"}', "oapi_1")
    assert result.output.startswith("HTTP 200\n") and '"id": "B-2"' in result.output
    assert rest.app["seen"][-1]["path"] == "/orders/B-2"


async def test_the_key_is_not_sent_to_another_origin(
    store: ConnectorStore, rest: FakeServer, other_rest: FakeServer
) -> None:
    rest.app["redirect"]["moved_to"] = other_rest.url + "/orders/C-3"
    orders = await tool(store, rest, tool_hosts_allowlist=[host(rest), host(other_rest)])
    result = await orders.call("orders__moved", "{}", "oapi_1")
    assert result.output.startswith("HTTP 401\n"), "the other origin never saw the key"


async def test_a_redirect_to_a_private_address_is_refused(store: ConnectorStore, rest: FakeServer) -> None:
    result = await (await tool(store, rest)).call("orders__exportOrders", "{}", "oapi_1")
    assert result.item["status"] == "failed"
    assert "169.254.169.254:80" in result.item["error"] and "tool_hosts_allowlist" in result.item["error"]
    starred = await tool(store, rest, tool_hosts_allowlist=[host(rest), "*"])
    result = await starred.call("orders__exportOrders", "{}", "oapi_2")
    assert "private, loopback or link-local" in result.item["error"]


async def test_redirects_stop_after_five_hops(store: ConnectorStore, rest: FakeServer) -> None:
    before = len(rest.app["seen"])
    result = await (await tool(store, rest)).call("orders__loop", "{}", "oapi_1")
    assert result.item["error"] == "the API redirected more than 5 times"
    assert len(rest.app["seen"]) - before == 6


async def test_big_answers_are_cut(store: ConnectorStore, rest: FakeServer) -> None:
    result = await (await tool(store, rest, max_tool_output_bytes=2000)).call("orders__getCatalog", "{}", "oapi_1")
    assert len(result.output.encode()) <= 2000 and result.output.startswith("HTTP 200\nwww")


async def test_a_slow_service_is_cut_off(store: ConnectorStore, rest: FakeServer) -> None:
    rest.app["faults"].delay = 5
    try:
        started = time.monotonic()
        result = await (await tool(store, rest, tool_timeout=0.5)).call("orders__getOrder", '{"order_id": "1"}', "o")
        assert time.monotonic() - started < 3
        assert result.item["error"] == "no answer within 0.5 s"
    finally:
        rest.app["faults"].delay = 0


async def test_unknown_connectors_operations_and_hosts_are_400s(store: ConnectorStore, rest: FakeServer) -> None:
    factory = OpenApiTools(store)
    context = ToolContext(Principal(False), AgentSettings(tool_hosts_allowlist=[host(rest)]))
    for spec, code in (
        ({"type": "openapi", "connector": "nope"}, "unknown_connector"),
        ({"type": "openapi"}, None),
        ({"type": "openapi", "connector": "orders", "operations": ["getOrder", "dropTables"]}, "unknown_operation"),
    ):
        with pytest.raises(InvalidRequest) as caught:
            await factory(spec, context)
        assert caught.value.param == "tools" and caught.value.code == code
    chosen = await factory({"type": "openapi", "connector": "orders", "operations": ["getOrder"]}, context)
    assert [f["function"]["name"] for f in chosen.functions()] == ["orders__getOrder"]
    closed = await factory({"type": "openapi", "connector": "orders"}, ToolContext(Principal(False), AgentSettings()))
    with pytest.raises(InvalidRequest) as caught:
        await closed.prepare()
    assert caught.value.code == "tool_host_not_allowed"


async def test_connectors_are_stored_with_their_credential(database: str) -> None:
    db = Database(database)
    await db.migrate()
    try:
        store = ConnectorStore(db)
        spec = rest_service.openapi_spec("http://127.0.0.1:9")
        assert await store.create("shop", spec, "http://127.0.0.1:9/v2", KEY_HEADER)
        assert not await store.create("shop", spec, None, KEY_HEADER)
        row = await store.get("shop")
        assert row is not None and (row["spec"], row["base_url"], row["auth"]) == (
            spec,
            "http://127.0.0.1:9/v2",
            KEY_HEADER,
        )
        assert [r["name"] for r in await store.all()] == ["shop"]
        assert await store.delete("shop") and not await store.delete("shop")
        assert await store.get("shop") is None
    finally:
        await db.close()

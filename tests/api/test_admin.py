"""The admin API: only the admin key; deployments created at run time are checked and stored."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import openai
import pytest

from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server, run_cli


def call(server: Server, method: str, path: str, body: Any = None, key: str | None = ADMIN_KEY) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_admin_routes_refuse_anything_but_the_admin_key(server: Server) -> None:
    status, body = call(server, "GET", "/admin/deployments", key=None)
    assert status == 401 and body["error"]["code"] == "missing_api_key"
    status, body = call(server, "GET", "/admin/catalog", key="sk-someone-else")
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert call(server, "GET", "/admin/catalog")[0] == 200


@pytest.mark.parametrize("header", ["Authorization", "api-key", "x-api-key"])
def test_keys_are_accepted_in_each_header_clients_use(server: Server, header: str) -> None:
    value = f"Bearer {ADMIN_KEY}" if header == "Authorization" else ADMIN_KEY
    request = urllib.request.Request(server.url + "/v1/models", headers={header: value})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    bad = urllib.request.Request(server.url + "/v1/models", headers={header: value.replace("admin", "wrong")})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bad, timeout=10)
    assert caught.value.code == 401


def test_catalog_lists_cards_with_hosts_and_prices(server: Server) -> None:
    status, body = call(server, "GET", "/admin/catalog")
    cards = {card["id"]: card for card in body["data"]}
    grok = cards["xai/grok-4"]
    assert grok["hosts"]["xai"] and grok["context_window"] > 100_000
    assert grok["pricing"]["input"] > 0
    assert call(server, "GET", "/admin/catalog/anthropic/claude-sonnet-4-5")[1]["hosts"]["anthropic"]
    status, body = call(server, "GET", "/admin/catalog/nobody/nothing")
    assert status == 404 and body["error"]["code"] == "model_not_in_catalog"


@pytest.mark.parametrize(
    ("spec", "param", "text"),
    [
        (
            {"name": "d1", "model": "nobody/nothing", "backends": [{"provider": "openai"}]},
            "model",
            "not in the catalog",
        ),
        (
            {"name": "d1", "model": "openai/gpt-4.1-mini", "backends": [{"provider": "nope"}]},
            "backends.0.provider",
            "not configured",
        ),
        ({"name": "d1", "model": "openai/gpt-4.1-mini", "backends": []}, "backends", "at least 1"),
        ({"name": "d1", "model": "openai/gpt-4.1-mini"}, "backends", "required"),
        (
            {"name": "bad name!", "model": "openai/gpt-4.1-mini", "backends": [{"provider": "openai"}]},
            "name",
            "letters",
        ),
        (
            {"name": "d1", "model": "anthropic/claude-sonnet-4-5", "backends": [{"provider": "xai"}]},
            "backends.0.upstream_model",
            "upstream_model",
        ),
        (
            {"name": "d1", "model": "openai/gpt-4.1-mini", "backends": [{"provider": "openai", "weight": -1}]},
            "backends.0.weight",
            "greater than 0",
        ),
    ],
)
def test_a_bad_deployment_is_refused_with_a_clear_400(
    server: Server, spec: dict[str, Any], param: str, text: str
) -> None:
    status, body = call(server, "POST", "/admin/deployments", spec)
    assert status == 400, body
    assert body["error"]["param"] == param
    assert text in body["error"]["message"]


def test_config_deployments_cannot_be_created_again_or_deleted(server: Server) -> None:
    status, body = call(
        server,
        "POST",
        "/admin/deployments",
        {"name": "gpt", "model": "openai/gpt-4.1-mini", "backends": [{"provider": "openai"}]},
    )
    assert status == 409 and body["error"]["code"] == "deployment_exists"
    status, body = call(server, "DELETE", "/admin/deployments/gpt")
    assert status == 409 and "config file" in body["error"]["message"]
    status, body = call(server, "DELETE", "/admin/deployments/never-was")
    assert status == 404


def test_deployments_created_at_run_time_serve_and_persist(fakes: dict[str, FakeServer], database: str) -> None:
    server = Server(gateway_config(fakes, server={"admin_key": ADMIN_KEY}, storage={"database": database})).start()
    try:
        spec = {
            "name": "team-grok",
            "model": "xai/grok-3",
            "backends": [{"provider": "xai"}, {"provider": "foundry", "upstream_model": "grok-3", "priority": 2}],
            "limits": {"rpm": 60},
        }
        status, created = call(server, "POST", "/admin/deployments", spec)
        assert status == 201
        assert created["backends"][0] == {"provider": "xai", "upstream_model": "grok-3", "priority": 1, "weight": 1.0}
        assert created["limits"]["rpm"] == 60 and created["source"] == "api"
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        answer = client.chat.completions.create(model="team-grok", messages=[{"role": "user", "content": "hi"}])
        assert answer.model == "grok-3"

        server.restart()
        assert call(server, "GET", "/admin/deployments/team-grok")[1]["backends"][1]["provider"] == "foundry"
        assert "team-grok" in {m.id for m in client.models.list()}
        assert call(server, "DELETE", "/admin/deployments/team-grok") == (200, {"name": "team-grok", "deleted": True})
        server.restart()
        assert call(server, "GET", "/admin/deployments/team-grok")[0] == 404
        assert "team-grok" not in {m.id for m in client.models.list()}
    finally:
        server.stop()


def test_cli_manages_deployments_and_chats(server: Server) -> None:
    env = {"FOUNDRY_URL": server.url, "FOUNDRY_ADMIN_KEY": ADMIN_KEY}
    created = run_cli(
        "deployments", "create", "cli-gpt", "--model", "openai/gpt-4.1-mini", "--provider", "openai", env=env
    )
    assert created.returncode == 0, created.stderr
    listed = run_cli("deployments", "list", env=env)
    assert "cli-gpt" in listed.stdout and "openai:gpt-4.1-mini" in listed.stdout
    chat = run_cli("chat", "cli-gpt", "--api-key", ADMIN_KEY, env=env, stdin="hello from the cli\n\n")
    assert "You said: hello from the cli" in chat.stdout
    assert run_cli("deployments", "delete", "cli-gpt", env=env).returncode == 0
    refused = run_cli("deployments", "delete", "cli-gpt", env=env)
    assert refused.returncode == 1 and "does not exist" in refused.stderr
    unauthorized = run_cli("deployments", "list", env={"FOUNDRY_URL": server.url, "FOUNDRY_ADMIN_KEY": "wrong"})
    assert unauthorized.returncode == 1 and "401" in unauthorized.stderr

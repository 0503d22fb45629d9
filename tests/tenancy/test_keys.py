"""Projects and API keys: secrets shown once and stored hashed, bound to a project and to deployments."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Iterator

import openai
import pytest
import sqlalchemy as sa

from openfoundry.store.db import async_url
from tests.api.test_admin import call
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server, run_cli


@pytest.fixture
def tenants(fakes: dict[str, FakeServer], database: str) -> Iterator[Server]:
    server = Server(gateway_config(fakes, server={"admin_key": ADMIN_KEY}, storage={"database": database})).start()
    yield server
    server.stop()


def make_key(server: Server, project: str, **extra: object) -> dict[str, object]:
    status, body = call(server, "POST", "/admin/keys", {"project": project, "name": f"{project}-key", **extra})
    assert status == 201, body
    return body  # type: ignore[no-any-return]


def stored_hashes(database: str) -> list[str]:
    async def read() -> list[str]:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(async_url(database))
        async with engine.connect() as connection:
            rows = await connection.execute(sa.text("SELECT hash FROM api_keys"))
            hashes = [row[0] for row in rows]
        await engine.dispose()
        return hashes

    return asyncio.run(read())


def test_projects_and_keys_lifecycle(tenants: Server, database: str) -> None:
    assert (
        call(tenants, "POST", "/admin/projects", {"name": "alpha", "budget_usd": 50, "budget_period": "month"})[0]
        == 201
    )
    assert call(tenants, "POST", "/admin/projects", {"name": "alpha"})[0] == 409
    status, patched = call(tenants, "PATCH", "/admin/projects/alpha", {"limits": {"rpm": 10}})
    assert status == 200 and patched["limits"]["rpm"] == 10 and patched["budget_usd"] == 50
    assert call(tenants, "PATCH", "/admin/projects/nobody", {"budget_usd": 1})[0] == 404
    assert [p["name"] for p in call(tenants, "GET", "/admin/projects")[1]["data"]] == ["alpha"]

    created = make_key(tenants, "alpha")
    secret = str(created["key"])
    assert secret.startswith("of-") and str(created["prefix"]) == secret[:10]
    assert stored_hashes(database) == [hashlib.sha256(secret.encode()).hexdigest()]
    listed = call(tenants, "GET", "/admin/keys?project=alpha")[1]["data"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert secret not in str(listed) and "hash" not in listed[0]

    client = openai.OpenAI(base_url=tenants.url + "/v1", api_key=secret, max_retries=0)
    assert client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}]).choices
    status, body = call(tenants, "GET", "/admin/deployments", key=secret)
    assert status == 403 and body["error"]["code"] == "admin_key_required"

    assert call(tenants, "DELETE", f"/admin/keys/{created['id']}") == (200, {"id": created["id"], "revoked": True})
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
    assert call(tenants, "DELETE", f"/admin/keys/{created['id']}")[0] == 404


def test_a_key_bound_to_deployments_is_refused_the_others(tenants: Server) -> None:
    call(tenants, "POST", "/admin/projects", {"name": "beta"})
    secret = str(make_key(tenants, "beta", deployments=["gpt"])["key"])
    client = openai.OpenAI(base_url=tenants.url + "/v1", api_key=secret, max_retries=0)
    assert client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "ok"}]).choices
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="grok", messages=[{"role": "user", "content": "no"}])
    assert refused.value.code == "deployment_not_allowed"
    assert [model.id for model in client.models.list()] == ["gpt"]
    status, body = call(tenants, "POST", "/admin/keys", {"project": "beta", "name": "x", "deployments": ["nope"]})
    assert status == 400 and body["error"]["code"] == "unknown_deployment"
    status, body = call(tenants, "POST", "/admin/keys", {"project": "ghost", "name": "x"})
    assert status == 400 and body["error"]["code"] == "project_not_found"


def test_unknown_and_expired_keys_get_401(tenants: Server) -> None:
    call(tenants, "POST", "/admin/projects", {"name": "gamma"})
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    expired = str(make_key(tenants, "gamma", expires_at=past)["key"])
    for secret, code in (("of-not-a-real-key", "invalid_api_key"), (expired, "expired_api_key")):
        client = openai.OpenAI(base_url=tenants.url + "/v1", api_key=secret, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}])
        assert caught.value.code == code


def test_cli_manages_projects_and_keys(tenants: Server) -> None:
    env = {"FOUNDRY_URL": tenants.url, "FOUNDRY_ADMIN_KEY": ADMIN_KEY}
    assert (
        run_cli("projects", "create", "delta", "--budget-usd", "5", "--budget-period", "day", env=env).returncode == 0
    )
    assert "delta" in run_cli("projects", "list", env=env).stdout
    created = run_cli("keys", "create", "delta", "ci", "--deployment", "gpt", env=env)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("of-") and "not shown again" in created.stderr
    listed = run_cli("keys", "list", "--project", "delta", env=env)
    assert secret[:10] in listed.stdout and secret not in listed.stdout
    key_id = created.stderr.split()[2]
    assert run_cli("keys", "revoke", key_id, env=env).returncode == 0
    assert "revoked" in run_cli("keys", "revoke", key_id, env=env).stderr

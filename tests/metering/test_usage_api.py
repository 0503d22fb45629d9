"""GET /admin/usage and `foundry usage` through a real gateway: tokens and cost of every call, per group."""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from openfoundry.catalog import Catalog
from tests.api.test_admin import call
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server, run_cli

SERVER_ERROR = b'{"error": {"message": "boom", "type": "server_error", "param": null, "code": null}}'


@pytest.fixture
def metered(fakes: dict[str, FakeServer], database: str, tmp_path: Path) -> Iterator[Server]:
    storage = {"database": database, "spool_dir": str(tmp_path / "spool")}
    server = Server(gateway_config(fakes, server={"admin_key": ADMIN_KEY}, storage=storage)).start()
    yield server
    server.stop()


def project_key(server: Server, project: str, **limits: Any) -> tuple[str, str]:
    """A new project with one key: (key id, secret)."""
    assert call(server, "POST", "/admin/projects", {"name": project, **limits})[0] == 201
    status, key = call(server, "POST", "/admin/keys", {"project": project, "name": f"{project}-key"})
    assert status == 201, key
    return key["id"], key["key"]


def client(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)


def ask(server: Server, key: str, model: str, text: str, *, stream: bool = False, **extra: Any) -> str:
    messages = [{"role": "user", "content": text}]
    if not stream:
        reply = client(server, key).chat.completions.create(model=model, messages=messages, **extra)  # type: ignore[arg-type]
        return reply.choices[0].message.content or ""
    chunks = client(server, key).chat.completions.create(model=model, messages=messages, stream=True, **extra)  # type: ignore[arg-type]
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def usage(server: Server, **query: Any) -> list[dict[str, Any]]:
    status, body = call(server, "GET", "/admin/usage?" + urllib.parse.urlencode(query, doseq=True))
    assert status == 200, body
    assert body["object"] == "list"
    return body["data"]  # type: ignore[no-any-return]


def wait_for_requests(server: Server, count: int, **query: Any) -> dict[str, Any]:
    """The total row once `count` calls are stored (the meter flushes about every 0.5 s)."""
    for _ in range(100):
        [total] = usage(server, **query)
        if total["requests"] >= count:
            return total
        time.sleep(0.1)
    raise AssertionError(f"only {total['requests']} of {count} calls stored")


def price(model: str, prompt: int, completion: int) -> float:
    card = Catalog.load().get(model)
    assert card is not None and card.pricing.input and card.pricing.output
    return (prompt * card.pricing.input + completion * card.pricing.output) / 1_000_000


def traffic(server: Server, fakes: dict[str, FakeServer]) -> dict[str, str]:
    """Calls from the admin key and two projects' keys; returns their key ids."""
    alpha_id, alpha = project_key(server, "alpha")
    beta_id, beta = project_key(server, "beta")
    assert ask(server, ADMIN_KEY, "gpt", "hello there world") == "You said: hello there world"
    assert ask(server, alpha, "gpt", "one two", stream=True) == "You said: one two"
    assert ask(server, alpha, "gpt", "a b c d") == "You said: a b c d"
    for stream in (False, True):
        answer = ask(server, beta, "grok-mini", "why is the sky blue", stream=stream, reasoning_effort="low")
        assert answer == "You said: why is the sky blue"
    fakes["openai"].app["faults"].errors = [(500, SERVER_ERROR)]
    with pytest.raises(openai.APIStatusError):
        ask(server, beta, "gpt-once", "fail")
    wait_for_requests(server, 6)
    return {"alpha": alpha_id, "beta": beta_id}


def test_every_call_is_metered_with_its_tokens_and_cost(metered: Server, fakes: dict[str, FakeServer]) -> None:
    traffic(metered, fakes)
    rows = {(r["project"], r["deployment"]): r for r in usage(metered, group_by=["project", "deployment"])}
    assert set(rows) == {(None, "gpt"), ("alpha", "gpt"), ("beta", "grok-mini"), ("beta", "gpt-once")}

    admin = rows[None, "gpt"]
    assert (admin["requests"], admin["prompt_tokens"], admin["completion_tokens"]) == (1, 3, 5)
    assert admin["cost_usd"] == pytest.approx(price("openai/gpt-4.1-mini", 3, 5))

    alpha = rows["alpha", "gpt"]  # one streamed call ("one two") and one whole ("a b c d")
    assert (alpha["requests"], alpha["prompt_tokens"], alpha["completion_tokens"]) == (2, 2 + 4, 4 + 6)
    assert alpha["cost_usd"] == pytest.approx(price("openai/gpt-4.1-mini", 6, 10))

    # xAI leaves the 5 reasoning tokens ("The user wrote 5 words.") out of completion_tokens: counted back in
    grok = rows["beta", "grok-mini"]
    assert (grok["requests"], grok["prompt_tokens"], grok["reasoning_tokens"]) == (2, 2 * 5, 2 * 5)
    assert grok["completion_tokens"] == 2 * (7 + 5)
    assert grok["cost_usd"] == pytest.approx(price("xai/grok-3-mini", 10, 24))

    failed = rows["beta", "gpt-once"]
    assert (failed["requests"], failed["errors"], failed["cost_usd"]) == (1, 1, 0.0)
    assert sum(row["errors"] for row in rows.values()) == 1


def test_groups_and_filters(metered: Server, fakes: dict[str, FakeServer]) -> None:
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    keys = traffic(metered, fakes)
    [total] = usage(metered)
    assert total["requests"] == 6 and total["project"] is None and total["day"] is None

    by_key = {row["key_id"]: row["requests"] for row in usage(metered, group_by="key")}
    assert by_key == {None: 1, keys["alpha"]: 2, keys["beta"]: 3}
    by_day = usage(metered, group_by="day")
    days = {started.date().isoformat(), dt.datetime.now(dt.UTC).date().isoformat()}  # one, unless near midnight
    assert {row["day"] for row in by_day} <= days
    assert sum(row["requests"] for row in by_day) == 6
    assert {r["deployment"] for r in usage(metered, group_by="deployment")} == {"gpt", "grok-mini", "gpt-once"}

    [alpha] = usage(metered, project="alpha", group_by="project")  # a project sees only itself
    assert (alpha["project"], alpha["requests"]) == ("alpha", 2)
    assert [r["project"] for r in usage(metered, key=keys["beta"], group_by="project,deployment")] == ["beta"] * 2
    assert usage(metered, deployment="grok-mini")[0]["requests"] == 2

    assert usage(metered, since=started.isoformat())[0]["requests"] == 6
    assert usage(metered, since=started.isoformat().replace("+00:00", "Z"))[0]["requests"] == 6
    assert usage(metered, since=str(time.time() + 60))[0]["requests"] == 0
    assert usage(metered, until=str(started.timestamp()))[0]["requests"] == 0
    assert usage(metered, since=str(started.timestamp()), until=str(time.time() + 60))[0]["requests"] == 6


def test_bad_queries_and_non_admins_are_refused(metered: Server) -> None:
    for query, param in (("since=yesterday", "since"), ("until=2026-13-01", "until"), ("group_by=model", "group_by")):
        status, body = call(metered, "GET", "/admin/usage?" + query)
        assert status == 400, body
        assert body["error"]["param"] == param and body["error"]["type"] == "invalid_request_error"
    _, secret = project_key(metered, "nosy")
    status, body = call(metered, "GET", "/admin/usage?project=nosy", key=secret)
    assert status == 403 and body["error"]["code"] == "admin_key_required"
    assert call(metered, "GET", "/admin/usage", key=None)[0] == 401


def test_cli_shows_usage_as_a_table(metered: Server, fakes: dict[str, FakeServer]) -> None:
    traffic(metered, fakes)
    env = {"FOUNDRY_URL": metered.url, "FOUNDRY_ADMIN_KEY": ADMIN_KEY}
    shown = run_cli("usage", "--project", "beta", "--group-by", "deployment", "--since", "1h", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any("grok-mini" in line and " 2 " in line for line in lines)
    assert any("gpt-once" in line for line in lines) and not any(" gpt " in line for line in lines)
    total = run_cli("usage", env=env)
    assert total.returncode == 0 and " 6 " in total.stdout
    bad = run_cli("usage", "--since", "someday", env=env)
    assert bad.returncode == 1 and "since" in bad.stderr


def test_a_clean_stop_stores_everything_and_leaves_no_spool(
    metered: Server, fakes: dict[str, FakeServer], tmp_path: Path
) -> None:
    traffic(metered, fakes)
    ask(metered, ADMIN_KEY, "gpt", "the last call before the stop")
    metered.stop()
    assert not list((tmp_path / "spool").rglob("*.jsonl*"))
    metered.start()
    assert usage(metered)[0]["requests"] == 7


def test_spend_survives_a_crash_and_keeps_the_budget(metered: Server) -> None:
    """Budgets count what the usage table says was spent this period, so a restart (here: kill -9, with
    the call only in the spool) does not hand the project a fresh budget."""
    _, secret = project_key(metered, "frugal", budget_usd=0.000001, budget_period="day")
    ask(metered, secret, "gpt", "spend more than the budget")
    assert metered.process is not None
    metered.process.kill()
    metered.process.wait()
    metered.start()
    with pytest.raises(openai.RateLimitError) as refused:
        ask(metered, secret, "gpt", "once more")
    assert refused.value.code == "budget_exceeded"

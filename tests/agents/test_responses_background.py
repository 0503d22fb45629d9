"""Background responses: queued at once, polled to the end, cancelled while the model still works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.agents.responses_support import project_client, project_key, wait_for
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server


def finished(client: openai.OpenAI, response_id: str) -> openai.types.responses.Response | None:
    response = client.responses.retrieve(response_id)
    return response if response.status not in ("queued", "in_progress") else None


def test_background_response_is_queued_then_completes(server: Server) -> None:
    client = project_client(server)
    conversation = client.conversations.create()
    queued = client.responses.create(
        model="gpt", input="work on this later", background=True, conversation=conversation.id
    )
    assert queued.status == "queued" and queued.background is True and queued.output == []
    done = wait_for(lambda: finished(client, queued.id), what="the background response to finish")
    assert done.status == "completed" and done.output_text == "You said: work on this later"
    assert done.usage is not None and done.usage.output_tokens == 6
    items = client.conversations.items.list(conversation.id, order="asc")
    assert [item.type for item in items] == ["message", "message"]
    assert [item.content[0].text for item in items] == [  # type: ignore[union-attr]
        "work on this later",
        "You said: work on this later",
    ]


def test_cancel_stops_a_slow_background_response(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = project_client(server)
    record, faults = fakes["openai"].app["record"], fakes["openai"].app["faults"]
    faults.delay = 2.0
    abandoned, seen = record.abandoned, record.count
    queued = client.responses.create(model="gpt", input="take your time", background=True)
    wait_for(lambda: record.count > seen, what="the model call to reach the upstream")

    cancelled = client.responses.cancel(queued.id)
    assert cancelled.id == queued.id and cancelled.status == "cancelled"
    wait_for(lambda: record.abandoned > abandoned, what="the upstream call to be dropped")
    assert client.responses.retrieve(queued.id).status == "cancelled"
    assert client.responses.cancel(queued.id).status == "cancelled"  # cancelling again changes nothing


def test_a_failing_background_response_records_its_error(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = project_client(server)
    body = b'{"error": {"message": "bad gateway", "type": "server_error", "param": null, "code": null}}'
    fakes["openai"].app["faults"].errors.append((502, body))
    queued = client.responses.create(model="gpt-once", input="this will fail", background=True)
    failed = wait_for(lambda: finished(client, queued.id), what="the background response to fail")
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "server_error"


def test_only_background_responses_can_be_cancelled(server: Server) -> None:
    client = project_client(server)
    response = client.responses.create(model="gpt", input="done already")
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.cancel(response.id)
    assert "background" in refused.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt", input="x", background=True, stream=True)


def knows_key(client: openai.OpenAI) -> bool:
    try:
        client.models.list()
    except openai.AuthenticationError:
        return False
    return True


@pytest.fixture
def two_workers(fakes: dict[str, FakeServer], tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two gateway processes on one database, as `--workers 2` or two hosts would be."""
    config = gateway_config(
        fakes, server={"admin_key": ADMIN_KEY}, storage={"database": f"sqlite:///{tmp_path}/shared.db"}
    )
    first = Server(config).start()
    second = Server(config).start()
    yield first, second
    first.stop()
    second.stop()


def test_another_process_polls_and_cancels_a_background_response(
    two_workers: tuple[Server, Server], fakes: dict[str, FakeServer]
) -> None:
    runner, other = two_workers
    key = project_key(runner)
    here = openai.OpenAI(base_url=runner.url + "/v1", api_key=key, max_retries=0)
    there = openai.OpenAI(base_url=other.url + "/v1", api_key=key, max_retries=0)
    wait_for(lambda: knows_key(there), what="the other process to load the new key")
    quick = here.responses.create(model="gpt", input="quick one", background=True)
    done = wait_for(lambda: finished(there, quick.id), what="the other process to see the response finish")
    assert done.output_text == "You said: quick one"

    record, faults = fakes["openai"].app["record"], fakes["openai"].app["faults"]
    faults.delay = 2.0
    seen = record.count
    slow = here.responses.create(model="gpt", input="slow one", background=True)
    wait_for(lambda: record.count > seen, what="the model call to reach the upstream")
    assert there.responses.retrieve(slow.id).status == "in_progress"
    assert there.responses.cancel(slow.id).status == "cancelled"
    assert here.responses.retrieve(slow.id).status == "cancelled"

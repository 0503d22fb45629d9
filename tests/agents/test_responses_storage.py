"""Responses and conversations kept in each database (SQLite; PostgreSQL when FOUNDRY_TEST_POSTGRES is
set), across a restart of the gateway process."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.agents.responses_support import WEATHER_TOOL, project_client, wait_for
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server


@pytest.fixture
def stored(fakes: dict[str, FakeServer], database: str) -> Iterator[Server]:
    server = Server(gateway_config(fakes, server={"admin_key": ADMIN_KEY}, storage={"database": database})).start()
    yield server
    server.stop()


def test_a_chain_of_responses_and_a_conversation_survive_a_restart(stored: Server) -> None:
    client = project_client(stored)
    first = client.responses.create(
        model="gpt",
        input=[{"role": "user", "content": word} for word in ("a", "b", "weather in Bern")],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    call = first.output[0]
    second = client.responses.create(
        model="gpt",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "mild"}],  # type: ignore[union-attr]
    )
    third = client.responses.create(model="gpt", previous_response_id=second.id, input="and tomorrow")
    conversation = client.conversations.create(items=[{"role": "user", "content": "hello"}], metadata={"k": "v"})
    in_conversation = client.responses.create(model="gpt", conversation=conversation.id, input="again")
    queued = client.responses.create(model="gpt", input="later", background=True)
    wait_for(lambda: client.responses.retrieve(queued.id).status == "completed", what="the background response")

    stored.restart()

    assert second.output_text == "The get_weather tool returned: mild"
    assert client.responses.retrieve(third.id) == third
    fourth = client.responses.create(model="gpt", previous_response_id=third.id, input="bye")
    assert fourth.output_text == "You said: bye"
    words = [item.content[0].text for item in client.responses.input_items.list(first.id, order="asc", limit=1)]  # type: ignore[union-attr]
    assert words == ["a", "b", "weather in Bern"]
    items = client.conversations.items.list(conversation.id, order="asc")
    assert [item.content[0].text for item in items] == ["hello", "again", "You said: again"]  # type: ignore[union-attr]
    assert client.conversations.retrieve(conversation.id).metadata == {"k": "v"}
    assert client.responses.retrieve(in_conversation.id).conversation.id == conversation.id  # type: ignore[union-attr]
    assert client.responses.retrieve(queued.id).output_text == "You said: later"

    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)
    client.conversations.delete(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conversation.id)

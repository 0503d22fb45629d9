"""/v1/conversations and their items through the official `openai` SDK, and responses that run in a
conversation."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.agents.responses_support import WEATHER_TOOL, project_client
from tests.fakes.server import FakeServer
from tests.harness import Server


def texts(items: Any) -> list[str]:
    return [item.content[0].text for item in items]


def test_conversation_lifecycle(server: Server) -> None:
    client = project_client(server)
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "remember the milk"}], metadata={"topic": "shopping"}
    )
    assert conversation.id.startswith("conv_") and conversation.object == "conversation"
    assert conversation.metadata == {"topic": "shopping"} and conversation.created_at > 1_700_000_000
    assert client.conversations.retrieve(conversation.id) == conversation

    updated = client.conversations.update(conversation.id, metadata={"topic": "groceries"})
    assert updated.metadata == {"topic": "groceries"}
    assert client.conversations.retrieve(conversation.id).metadata == {"topic": "groceries"}

    deleted = client.conversations.delete(conversation.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (conversation.id, True, "conversation.deleted")
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conversation.id)


def test_items_add_list_get_and_delete(server: Server) -> None:
    client = project_client(server)
    conversation = client.conversations.create()
    assert list(client.conversations.items.list(conversation.id)) == []

    added = client.conversations.items.create(
        conversation.id,
        items=[{"type": "message", "role": "user", "content": f"note {index}"} for index in range(5)],
    )
    assert texts(added.data) == [f"note {index}" for index in range(5)]
    assert all(item.id.startswith("msg_") for item in added.data)  # type: ignore[union-attr]

    newest_first = client.conversations.items.list(conversation.id, limit=2)
    assert texts(newest_first.data) == ["note 4", "note 3"] and newest_first.has_more
    assert texts(client.conversations.items.list(conversation.id, limit=2)) == [f"note {i}" for i in range(4, -1, -1)]
    oldest_first = client.conversations.items.list(conversation.id, order="asc", after=added.data[1].id)  # type: ignore[union-attr]
    assert texts(oldest_first) == ["note 2", "note 3", "note 4"]

    third = added.data[2]
    fetched = client.conversations.items.retrieve(third.id, conversation_id=conversation.id)  # type: ignore[union-attr]
    assert fetched.id == third.id and fetched.content[0].text == "note 2"  # type: ignore[union-attr]
    after_delete = client.conversations.items.delete(third.id, conversation_id=conversation.id)  # type: ignore[union-attr]
    assert after_delete.id == conversation.id and after_delete.object == "conversation"
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(third.id, conversation_id=conversation.id)  # type: ignore[union-attr]
    assert "note 2" not in texts(client.conversations.items.list(conversation.id))


def test_bad_items_are_refused(server: Server) -> None:
    client = project_client(server)
    conversation = client.conversations.create()
    too_many = [{"type": "message", "role": "user", "content": str(index)} for index in range(21)]
    with pytest.raises(openai.BadRequestError) as failed:
        client.conversations.items.create(conversation.id, items=too_many)  # type: ignore[arg-type]
    assert failed.value.body["param"] == "items"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as failed:
        client.conversations.items.create(conversation.id, items=[{"type": "teleport"}])  # type: ignore[list-item]
    assert failed.value.body["param"] == "items[0]"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as failed:
        client.conversations.create(metadata={"k": "v" * 600})
    assert failed.value.body["param"] == "metadata"  # type: ignore[index]


def test_a_response_in_a_conversation_sees_and_extends_it(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = project_client(server)
    conversation = client.conversations.create(items=[{"role": "user", "content": "my name is Ada"}])
    first = client.responses.create(model="gpt", conversation=conversation.id, input="what is my name")
    assert first.conversation is not None and first.conversation.id == conversation.id
    sent = json.loads(fakes["openai"].app["record"].body)["messages"]
    assert [m["content"] for m in sent] == ["my name is Ada", "what is my name"]
    assert texts(client.conversations.items.list(conversation.id, order="asc")) == [
        "my name is Ada",
        "what is my name",
        "You said: what is my name",
    ]

    call = client.responses.create(
        model="gpt",
        conversation={"id": conversation.id},
        input="weather in Madrid",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    [function_call] = call.output
    answered = client.responses.create(
        model="gpt",
        conversation=conversation.id,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": function_call.call_id, "output": "hot"}],  # type: ignore[union-attr]
    )
    assert answered.output_text == "The get_weather tool returned: hot"
    kinds = [item.type for item in client.conversations.items.list(conversation.id, order="asc")]
    assert kinds == ["message"] * 4 + ["function_call", "function_call_output", "message"]


def test_conversations_are_isolated_between_projects(server: Server) -> None:
    alice, bob = project_client(server), project_client(server)
    conversation = alice.conversations.create(items=[{"role": "user", "content": "secret"}])
    item_id = alice.conversations.items.list(conversation.id).data[0].id  # type: ignore[union-attr]
    for attempt in (
        lambda: bob.conversations.retrieve(conversation.id),
        lambda: bob.conversations.update(conversation.id, metadata={"x": "y"}),
        lambda: bob.conversations.delete(conversation.id),
        lambda: bob.conversations.items.list(conversation.id),
        lambda: bob.conversations.items.create(conversation.id, items=[{"role": "user", "content": "x"}]),
        lambda: bob.conversations.items.retrieve(item_id, conversation_id=conversation.id),
        lambda: bob.conversations.items.delete(item_id, conversation_id=conversation.id),
        lambda: bob.responses.create(model="gpt", input="x", conversation=conversation.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert texts(alice.conversations.items.list(conversation.id)) == ["secret"]

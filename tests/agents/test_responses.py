"""POST /v1/responses (whole answers) and the stored responses, through the official `openai` SDK
against a real gateway process and the fake upstreams."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.conversations import Conversation, ConversationItem
from openai.types.responses import Response
from pydantic import TypeAdapter

from tests.agents.responses_support import WEATHER_TOOL, project_client
from tests.api.test_admin import call
from tests.fakes.server import FakeServer
from tests.harness import Server


def last_chat_request(fakes: dict[str, FakeServer], upstream: str = "openai") -> dict[str, Any]:
    body: dict[str, Any] = json.loads(fakes[upstream].app["record"].body)
    return body


def test_string_input_with_instructions_answers_and_is_stored(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = project_client(server)
    response = client.responses.create(
        model="gpt", input="hello there", instructions="Be brief.", metadata={"run": "one"}
    )
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.error is None
    assert response.output_text == "You said: hello there"
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert response.instructions == "Be brief." and response.metadata == {"run": "one"}
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens == 4
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    sent = last_chat_request(fakes)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert client.responses.retrieve(response.id) == response


def test_item_input_keeps_roles_and_images(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = project_client(server)
    response = client.responses.create(
        model="gpt",
        input=[
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                ],
            },
        ],
    )
    assert response.output_text == "You said: what is this [saw 1 image(s): image/png]"
    sent = last_chat_request(fakes)["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[3]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"},
    }
    listed = client.responses.input_items.list(response.id, order="asc")
    assert [item.role for item in listed if item.type == "message"] == ["developer", "user", "assistant", "user"]


def test_retrieve_and_delete(server: Server) -> None:
    client = project_client(server)
    response = client.responses.create(model="gpt", input="keep me")
    assert client.responses.retrieve(response.id).output_text == "You said: keep me"
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)


def test_input_items_are_a_cursor_list(server: Server) -> None:
    client = project_client(server)
    words = ["one", "two", "three", "four", "five"]
    response = client.responses.create(model="gpt", input=[{"role": "user", "content": word} for word in words])
    ascending = client.responses.input_items.list(response.id, order="asc", limit=2)
    assert [item.content[0].text for item in ascending.data] == ["one", "two"]  # type: ignore[union-attr]
    assert ascending.has_more
    every = [item.content[0].text for item in ascending]  # type: ignore[union-attr]
    assert every == words  # the SDK followed the `after` cursor page by page
    newest_first = client.responses.input_items.list(response.id)
    assert [item.content[0].text for item in newest_first] == words[::-1]  # type: ignore[union-attr]
    after = client.responses.input_items.list(response.id, order="asc", after=ascending.data[1].id)
    assert [item.content[0].text for item in after] == words[2:]  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.input_items.list(response.id, limit=101)
    assert bad.value.body["param"] == "limit"  # type: ignore[index]


@pytest.mark.parametrize("model", ["gpt", "claude", "grok", "gemini-flash"])
def test_function_tool_round_trip_with_previous_response_id(server: Server, model: str) -> None:
    client = project_client(server)
    first = client.responses.create(model=model, input="weather in Paris", tools=[WEATHER_TOOL])  # type: ignore[list-item]
    assert first.status == "completed"
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and call.id and call.id.startswith("fc_")
    assert json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}],
    )
    assert second.output_text == "The get_weather tool returned: sunny, 21 C"
    assert second.previous_response_id == first.id
    third = client.responses.create(model=model, previous_response_id=second.id, input="thanks")
    assert third.output_text == "You said: thanks"


def test_the_whole_history_can_be_sent_instead_of_previous_response_id(
    server: Server, fakes: dict[str, FakeServer]
) -> None:
    client = project_client(server)
    first = client.responses.create(model="gpt", input="weather in Oslo", tools=[WEATHER_TOOL])  # type: ignore[list-item]
    history: list[Any] = [
        {"role": "user", "content": "weather in Oslo"},
        *[item.model_dump(exclude_none=True) for item in first.output],
    ]
    history.append({"type": "function_call_output", "call_id": first.output[0].call_id, "output": "snow"})  # type: ignore[union-attr]
    second = client.responses.create(model="gpt", input=history, tools=[WEATHER_TOOL], store=False)  # type: ignore[list-item]
    assert second.output_text == "The get_weather tool returned: snow"
    sent = last_chat_request(fakes)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == sent[2]["tool_call_id"] == first.output[0].call_id  # type: ignore[union-attr]


def test_tool_choice_none_and_named_function(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = project_client(server)
    other = {**WEATHER_TOOL, "name": "get_time", "description": "The time in a city."}
    quiet = client.responses.create(model="gpt", input="weather in Rome", tools=[WEATHER_TOOL], tool_choice="none")  # type: ignore[list-item]
    assert quiet.output_text == "You said: weather in Rome" and quiet.tool_choice == "none"
    named = client.responses.create(
        model="gpt",
        input="time in Rome",
        tools=[WEATHER_TOOL, other],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_time"},
        parallel_tool_calls=False,
    )
    assert [item.name for item in named.output] == ["get_time"]  # type: ignore[union-attr]
    sent = last_chat_request(fakes)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["tools"][1]["function"]["name"] == "get_time"


def test_json_schema_text_format(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = project_client(server)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model="gpt",
        input="plan a trip to Lisbon",
        text={"format": {"type": "json_schema", "name": "trip", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"city": "Lisbon", "days": 5}
    assert response.text is not None and response.text.format is not None and response.text.format.type == "json_schema"
    sent = last_chat_request(fakes)["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "trip", "schema": schema, "strict": True}}


def test_max_output_tokens_makes_an_incomplete_response(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = project_client(server)
    words = " ".join(f"word{index}" for index in range(30))
    response = client.responses.create(model="gpt", input=words, max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert len(response.output_text.split()) == 16 and response.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert last_chat_request(fakes)["max_completion_tokens"] == 16


def test_store_false_is_not_kept(server: Server) -> None:
    client = project_client(server)
    response = client.responses.create(model="gpt", input="forget me", store=False)
    assert response.output_text == "You said: forget me" and response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="gpt", input="again", previous_response_id=response.id)
    assert missing.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_unknown_fields_are_accepted(server: Server) -> None:
    client = project_client(server)
    response = client.responses.create(
        model="gpt",
        input="still fine",
        extra_body={"agent_reference": {"name": "x"}, "some_future_option": [1, 2]},
        truncation="auto",
        reasoning={"effort": "low"},
    )
    assert response.output_text == "You said: still fine"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"input": "hi"}, 400, "model"),
        ({"model": "gpt", "input": 5}, 400, "input"),
        ({"model": "gpt"}, 400, "input"),
        ({"model": "gpt", "input": [{"type": "bogus_item"}]}, 400, "input[0]"),
        ({"model": "gpt", "input": [{"role": "robot", "content": "x"}]}, 400, "input[0].role"),
        (
            {"model": "gpt", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            400,
            "input[0].content[0]",
        ),
        ({"model": "gpt", "input": "hi", "tools": [{"type": "web_search"}]}, 400, "tools[0].type"),
        ({"model": "gpt", "input": "hi", "tools": [{"type": "function"}]}, 400, "tools[0].name"),
        ({"model": "gpt", "input": "hi", "tools": "get_weather"}, 400, "tools"),
        ({"model": "gpt", "input": "hi", "tool_choice": "sometimes"}, 400, "tool_choice"),
        ({"model": "gpt", "input": "hi", "tool_choice": {"type": "function", "name": "nope"}}, 400, "tool_choice"),
        ({"model": "gpt", "input": "hi", "max_output_tokens": 3}, 400, "max_output_tokens"),
        ({"model": "gpt", "input": "hi", "metadata": {"k": 1}}, 400, "metadata"),
        ({"model": "gpt", "input": "hi", "text": {"format": {"type": "json_schema"}}}, 400, "text.format.name"),
        ({"model": "gpt", "input": "hi", "store": "yes"}, 400, "store"),
        ({"model": "gpt", "input": "hi", "background": True, "store": False}, 400, "store"),
        (
            {"model": "gpt", "input": "hi", "previous_response_id": "resp_x", "conversation": "conv_x"},
            400,
            "conversation",
        ),
        (
            {"model": "gpt", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]},
            400,
            "input",
        ),
        ({"model": "no-such-model", "input": "hi"}, 404, "model"),
        ({"model": "gpt", "input": "hi", "previous_response_id": "resp_missing"}, 404, "previous_response_id"),
        ({"model": "gpt", "input": "hi", "conversation": "conv_missing"}, 404, "conversation"),
    ],
)
def test_bad_requests_get_clear_errors(server: Server, body: dict[str, Any], status: int, param: str) -> None:
    client = project_client(server)
    with pytest.raises(openai.APIStatusError) as failed:
        client.post("/responses", body=body, cast_to=object)
    assert failed.value.status_code == status
    error = failed.value.body
    assert isinstance(error, dict) and error["param"] == param and error["message"], error


@pytest.mark.parametrize(
    "options",
    [
        {"input": "hello"},
        {"input": "weather in Oslo", "tools": [WEATHER_TOOL]},
        {"input": " ".join(["word"] * 30), "max_output_tokens": 16},
        {"input": "later", "background": True},
    ],
)
def test_the_wire_shape_validates_strictly_against_the_sdk_types(server: Server, options: dict[str, Any]) -> None:
    """The SDK parses leniently; strict validation of the raw JSON catches any field of the wrong shape."""
    client = project_client(server)
    raw = client.responses.with_raw_response.create(model="gpt", **options).http_response.json()
    Response.model_validate(raw)
    conversation = client.conversations.with_raw_response.create(items=[{"role": "user", "content": "hi"}])
    Conversation.model_validate(conversation.http_response.json())
    listed = client.conversations.items.with_raw_response.list(conversation.parse().id).http_response.json()
    for item in listed["data"]:
        TypeAdapter(ConversationItem).validate_python(item)


def test_the_routes_are_described_in_openapi_json(server: Server) -> None:
    status, document = call(server, "GET", "/openapi.json")
    assert status == 200
    paths = document["paths"]
    assert set(paths["/v1/responses/{response_id}"]) == {"get", "delete"}
    assert set(paths["/v1/conversations/{conversation_id}/items/{item_id}"]) == {"get", "delete"}
    assert paths["/v1/responses"]["post"]["operationId"] == "create_response"


def test_a_key_is_required(server: Server) -> None:
    for method, path in (("POST", "/v1/responses"), ("GET", "/v1/responses/resp_x"), ("POST", "/v1/conversations")):
        status, body = call(server, method, path, {"model": "gpt", "input": "hi"} if method == "POST" else None, None)
        assert status == 401 and body["error"]["code"] == "missing_api_key", (path, body)


def test_responses_are_isolated_between_projects(server: Server) -> None:
    alice, bob = project_client(server), project_client(server)
    response = alice.responses.create(model="gpt", input="private")
    for attempt in (
        lambda: bob.responses.retrieve(response.id),
        lambda: bob.responses.delete(response.id),
        lambda: bob.responses.input_items.list(response.id),
        lambda: bob.responses.cancel(response.id),
        lambda: bob.responses.create(model="gpt", input="x", previous_response_id=response.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert alice.responses.retrieve(response.id).output_text == "You said: private"

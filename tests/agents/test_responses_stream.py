"""Streamed responses: the SDK's `responses.stream` helper (which checks the event order strictly) and
`responses.create(stream=True)`, the event sequence, tool calls, and failures mid-stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from tests.agents.responses_support import WEATHER_TOOL, project_client
from tests.fakes.server import FakeServer
from tests.harness import Server


@pytest.fixture
def cut_streams(fakes: dict[str, FakeServer]) -> Iterator[FakeServer]:
    """The OpenAI fake, whose streams a test may cut (reset afterwards)."""
    yield fakes["openai"]
    fakes["openai"].app["faults"].cut_after = None


def check_sequence(events: list[Any]) -> None:
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert [event.type for event in events[:2]] == ["response.created", "response.in_progress"]


def test_stream_helper_delivers_text_deltas_and_the_final_response(server: Server) -> None:
    client = project_client(server)
    with client.responses.stream(model="gpt", input="tell me a story", instructions="Be brief.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    check_sequence(events)
    kinds = [event.type for event in events]
    assert kinds[2:5] == ["response.output_item.added", "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas == final.output_text == "You said: tell me a story"
    assert kinds.count("response.output_text.delta") == len(final.output_text.split())
    assert final.status == "completed" and final.usage is not None and final.usage.output_tokens == 6
    assert client.responses.retrieve(final.id).output_text == final.output_text


@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_streamed_function_call_then_its_answer(server: Server, model: str) -> None:
    client = project_client(server)
    events = list(client.responses.create(model=model, input="weather in Lima", tools=[WEATHER_TOOL], stream=True))  # type: ignore[list-item]
    check_sequence(events)
    assert [event.type for event in events[2:]] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    call = events[-2].item
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Lima"}
    assert events[2].item.arguments == "" and events[2].item.status == "in_progress"
    completed = events[-1].response
    with client.responses.stream(
        model=model,
        previous_response_id=completed.id,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "cloudy"}],
    ) as stream:
        final = stream.get_final_response()
    assert final.output_text == "The get_weather tool returned: cloudy"


@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_every_event_validates_strictly_against_the_sdk_types(server: Server, model: str) -> None:
    client = project_client(server)
    raw = client.post(
        "/responses",
        body={"model": model, "input": "weather in Quito", "tools": [WEATHER_TOOL], "stream": True},
        cast_to=str,
    )
    lines = [line for line in raw.splitlines() if line.startswith(("event: ", "data: "))]
    names, payloads = lines[0::2], [json.loads(line[len("data: ") :]) for line in lines[1::2]]
    assert [name[len("event: ") :] for name in names] == [payload["type"] for payload in payloads]
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for payload in payloads:
        adapter.validate_python(payload)
    assert "[DONE]" not in raw


def test_max_output_tokens_ends_the_stream_incomplete(server: Server) -> None:
    client = project_client(server)
    words = " ".join(f"w{index}" for index in range(40))
    events = list(client.responses.create(model="gpt", input=words, max_output_tokens=16, stream=True))
    check_sequence(events)
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert len(last.response.output_text.split()) == 16


def test_an_upstream_failure_before_the_answer_is_a_failed_event(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = project_client(server)
    body = b'{"error": {"message": "the model is overloaded", "type": "server_error", "param": null, "code": null}}'
    fakes["openai"].app["faults"].errors.append((500, body))
    events = list(client.responses.create(model="gpt-once", input="hello", stream=True))
    check_sequence(events)
    assert [event.type for event in events[2:]] == ["response.failed"]
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error"
    assert client.responses.retrieve(failed.id).status == "failed"


def test_a_stream_cut_mid_answer_is_a_failed_event_after_the_text(server: Server, cut_streams: FakeServer) -> None:
    client = project_client(server)
    cut_streams.app["faults"].cut_after = 3
    events = list(client.responses.create(model="gpt-once", input="one two three four five six", stream=True))
    check_sequence(events)
    kinds = [event.type for event in events]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.failed"
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 1
    failed = events[-1].response
    assert failed.error.message and failed.output[0].status == "incomplete"
    assert failed.output[0].content[0].text == "".join(e.delta for e in events if e.type.endswith("text.delta"))

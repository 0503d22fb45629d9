"""The Anthropic Messages surface: golden translations, then the official `anthropic` SDK against every host."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from openfoundry.errors import InvalidRequest
from openfoundry.wire import sse
from openfoundry.wire.anthropic import EventStream, anthropic_message, openai_request
from tests.api.test_azure_surface import send
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server

GOLDEN = Path(__file__).parent.parent / "golden" / "surfaces"
MODELS = ["gpt", "claude", "gemini-flash"]
UPSTREAMS = {"gpt": "openai", "claude": "anthropic", "gemini-flash": "gemini"}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 32).decode()


def golden(prefix: str) -> list[Any]:
    files = sorted(GOLDEN.glob(f"anthropic_{prefix}_*.json"))
    assert files, f"no anthropic_{prefix} fixtures in {GOLDEN}"
    return [pytest.param(json.loads(file.read_text()), id=file.stem) for file in files]


# -- golden translations


@pytest.mark.parametrize("case", golden("request"))
def test_request_translates_anthropic_to_openai(case: dict[str, Any]) -> None:
    assert openai_request(case["anthropic"]) == case["openai"]


@pytest.mark.parametrize("case", golden("response"))
def test_response_translates_openai_to_anthropic(case: dict[str, Any]) -> None:
    assert anthropic_message(case["openai"], stop_sequences=case.get("stop_sequences", [])) == case["anthropic"]


@pytest.mark.parametrize("case", golden("stream"))
def test_stream_translates_openai_chunks_to_anthropic_events(case: dict[str, Any]) -> None:
    stream = EventStream(stop_sequences=case.get("stop_sequences", []))
    out: list[bytes] = []
    for chunk in case["openai"]:
        out += stream.feed_data(chunk.encode() if isinstance(chunk, str) else orjson.dumps(chunk))
    out += stream.end()
    events = sse.Decoder().feed(b"".join(out))
    assert all(event.event == orjson.loads(event.data)["type"] for event in events)
    assert [orjson.loads(event.data) for event in events] == case["anthropic"]
    assert stream.done


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({"model": "gpt", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({"model": "gpt", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "gpt", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        (
            {"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document"}]}]},
            "messages.0.content.0",
        ),
        (
            {
                "model": "gpt",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "bash"}],
            },
            "tools.0",
        ),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        openai_request(body)
    assert caught.value.param == param


# -- the SDK against the running server


@pytest.fixture
def client(server: Server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=ADMIN_KEY, max_retries=0)


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


@pytest.mark.parametrize("model", MODELS)
def test_create_answers_with_system_text_and_usage(client: anthropic.Anthropic, model: str) -> None:
    message = client.messages.create(
        model=model, max_tokens=100, system="be brief", messages=[{"role": "user", "content": "hello claude"}]
    )
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert text_of(message) == "You said: hello claude"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 4)
    assert message.id.startswith("msg_")


@pytest.mark.parametrize("model", MODELS)
def test_system_blocks_and_multi_turn(client: anthropic.Anthropic, model: str) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=100,
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "second question here"}]},
        ],
    )
    assert text_of(message) == "You said: second question here"
    usage = message.usage
    assert usage.input_tokens + (usage.cache_read_input_tokens or 0) == 9
    if model == "claude":  # natively forwarded: cache_control reached Anthropic, which read 2 tokens from cache
        assert usage.cache_read_input_tokens == 2


@pytest.mark.parametrize("model", MODELS)
def test_stream_sends_the_full_event_sequence(client: anthropic.Anthropic, model: str) -> None:
    events = list(
        client.messages.create(
            model=model, max_tokens=100, stream=True, messages=[{"role": "user", "content": "count these words please"}]
        )
    )
    kinds = [event.type for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == (  # type: ignore[union-attr]
        "You said: count these words please"
    )
    final = events[-2]
    assert final.type == "message_delta"
    assert final.delta.stop_reason == "end_turn"
    started = events[0].message.usage  # type: ignore[union-attr]
    if model == "claude":  # natively forwarded: Anthropic counts the input in message_start
        assert (started.input_tokens, final.usage.output_tokens) == (4, 6)
    else:  # translated: the count arrives last, so message_delta carries it
        assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 6)


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_accumulates_the_message(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(
        model=model, max_tokens=100, system="be brief", messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == text_of(message) == "You said: stream me"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 4)


def ask_for_weather(client: anthropic.Anthropic, model: str, stream: bool) -> Any:
    request: dict[str, Any] = {
        "model": model,
        "max_tokens": 200,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": "What is the weather in Lisbon?"}],
    }
    if not stream:
        return client.messages.create(**request)
    with client.messages.stream(**request) as events:
        return events.get_final_message()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_round_trip(client: anthropic.Anthropic, model: str, stream: bool) -> None:
    first = ask_for_weather(client, model, stream)
    assert first.stop_reason == "tool_use"
    calls = [block for block in first.content if block.type == "tool_use"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather" and calls[0].input == {"city": "Lisbon"}
    assert calls[0].id
    second = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "What is the weather in Lisbon?"},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"}]},
        ],
    )
    assert text_of(second) == "The get_weather tool returned: sunny"
    assert second.stop_reason == "end_turn"


@pytest.mark.parametrize("model", MODELS)
def test_failed_tool_result_in_blocks_is_reported_as_an_error(client: anthropic.Anthropic, model: str) -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Lisbon"}}
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "is_error": True,
        "content": [{"type": "text", "text": "offline"}],
    }
    message = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "What is the weather in Lisbon?"},
            {"role": "assistant", "content": [call]},  # type: ignore[list-item]
            {"role": "user", "content": [result]},  # type: ignore[list-item]
        ],
    )
    # Translated, the failure becomes part of the tool message; forwarded natively, Anthropic gets the
    # is_error flag itself (the fake model reports the content either way).
    reported = "offline" if model == "claude" else "Error: offline"
    assert text_of(message) == f"The get_weather tool returned: {reported}"


@pytest.mark.parametrize("model", MODELS)
def test_tool_choice_none_answers_in_text(client: anthropic.Anthropic, model: str) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "none"},
        messages=[{"role": "user", "content": "What is the weather in Lisbon?"}],
    )
    assert text_of(message) == "You said: What is the weather in Lisbon?"


@pytest.mark.parametrize("model", MODELS)
def test_images_base64_and_url(client: anthropic.Anthropic, model: str) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=200,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {"type": "text", "text": "what is this"},
                ],
            }
        ],
    )
    assert text_of(message) == "You said: what is this [saw 2 image(s): image/jpeg, url]"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_and_stop_sequences(client: anthropic.Anthropic, model: str, stream: bool) -> None:
    def ask(text: str, **extra: Any) -> Any:
        request = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        if not stream:
            return client.messages.create(**request)
        with client.messages.stream(**request) as events:
            return events.get_final_message()

    cut = ask("one two three four five", max_tokens=3)
    assert (text_of(cut), cut.stop_reason) == ("You said: one", "max_tokens")
    stopped = ask("alpha beta gamma", max_tokens=100, stop_sequences=["gamma"])
    assert text_of(stopped) == "You said: alpha beta "
    if model == "claude":  # natively forwarded: Anthropic says which stop sequence matched
        assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "gamma")
    else:  # translated hosts report a stop sequence as an ordinary stop, so which one matched is not known
        assert (stopped.stop_reason, stopped.stop_sequence) == ("end_turn", None)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_thinking_comes_back_as_a_thinking_block(client: anthropic.Anthropic, model: str, stream: bool) -> None:
    request: dict[str, Any] = {
        "model": model,
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "think about this"}],
    }
    if stream:
        with client.messages.stream(**request) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**request)
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking.strip() == "The user wrote 3 words."  # type: ignore[union-attr]
    assert text_of(message) == "You said: think about this"


def test_request_fields_reach_an_openai_upstream(client: anthropic.Anthropic, fakes: dict[str, FakeServer]) -> None:
    client.messages.create(
        model="gpt",
        max_tokens=50,
        extra_body={"temperature": 0.5, "top_p": 0.9},  # older clients send them; this SDK no longer does
        metadata={"user_id": "user-7"},
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "hi"}],
    )
    sent = json.loads(fakes["openai"].app["record"].body)
    assert sent["model"] == "gpt-4.1-mini"
    assert {key: sent[key] for key in ("max_tokens", "temperature", "top_p", "user", "parallel_tool_calls")} == {
        "max_tokens": 50,
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "user-7",
        "parallel_tool_calls": False,
    }
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]


@pytest.mark.parametrize("model", MODELS)
def test_structured_output_answers_json(client: anthropic.Anthropic, model: str) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    message = client.messages.create(
        model=model,
        max_tokens=200,
        output_config={"format": {"type": "json_schema", "schema": schema}},
        messages=[{"role": "user", "content": "I live in Kyoto"}],
    )
    assert json.loads(text_of(message)) == {"city": "Kyoto"}
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("model", MODELS)
def test_count_tokens_estimates(client: anthropic.Anthropic, model: str) -> None:
    counted = client.messages.count_tokens(
        model=model, system="be brief", messages=[{"role": "user", "content": "hello there"}]
    )
    assert counted.input_tokens == 13  # ceil(19 characters / 4) + 4 per message for two messages
    with_image = client.messages.count_tokens(
        model=model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG}},
                    {"type": "text", "text": "abcd"},
                ],
            }
        ],
    )
    assert with_image.input_tokens == 1 + 4 + 1600


def test_stream_cut_upstream_ends_in_an_error_event(client: anthropic.Anthropic, fakes: dict[str, FakeServer]) -> None:
    fakes["openai"].app["faults"].cut_after = 3
    try:
        stream = client.messages.create(
            model="gpt-once", max_tokens=100, stream=True, messages=[{"role": "user", "content": "one two three four"}]
        )
        seen = []
        with pytest.raises(anthropic.APIStatusError) as caught:
            for event in stream:
                seen.append(event.type)
    finally:
        fakes["openai"].app["faults"].cut_after = None
    assert seen[0] == "message_start" and "message_stop" not in seen
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]


# -- errors


def test_bad_key_is_an_authentication_error(server: Server) -> None:
    bad = anthropic.Anthropic(base_url=server.url, api_key="wrong-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(model="gpt", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid API key"},
    }


@pytest.mark.parametrize("stream", [False, True])
def test_unknown_model_is_not_found(client: anthropic.Anthropic, stream: bool) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(
            model="no-such-model", max_tokens=10, stream=stream, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "hi"}])


def test_missing_version_header_and_max_tokens_are_bad_requests(server: Server) -> None:
    body = {"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": ADMIN_KEY}
    status, answer = send(server, "POST", "/v1/messages", body, headers)
    assert status == 400
    assert answer == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "anthropic-version: header is required"},
    }
    headers["anthropic-version"] = "2023-06-01"
    del body["max_tokens"]
    status, answer = send(server, "POST", "/v1/messages", body, headers)
    assert status == 400
    assert answer["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


def test_an_anthropic_hosted_deployment_gets_the_clients_bytes(
    client: anthropic.Anthropic, fakes: dict[str, FakeServer]
) -> None:
    """Native pass-through: only `model` changes on the way up, so fields the canonical shape has no
    place for (top_k, cache_control, metadata) reach Anthropic, and its answer comes back as it is."""
    message = client.messages.create(
        model="claude",
        max_tokens=50,
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "pass me through"}],
        metadata={"user_id": "u-42"},
        extra_body={"top_k": 5},
    )
    sent = json.loads(fakes["anthropic"].app["record"].body)
    assert sent["model"] == "claude-sonnet-4-5-20250929"
    assert sent["top_k"] == 5 and sent["metadata"] == {"user_id": "u-42"}
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert message.id.startswith("msg_") and text_of(message) == "You said: pass me through"

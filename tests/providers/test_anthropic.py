"""The Anthropic provider: golden translations both ways, then the real HTTP path against the fake."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from openfoundry.config import ProviderSettings
from openfoundry.errors import FoundryError, InvalidRequest
from openfoundry.providers.anthropic import (
    AnthropicProvider,
    StreamTranslator,
    request_body,
    response_body,
    translate_error,
)
from openfoundry.providers.base import Call, Usage
from openfoundry.wire import sse
from tests.fakes import anthropic as fake
from tests.fakes.server import FakeServer

GOLDEN = Path(__file__).parent.parent / "golden" / "anthropic"
UPSTREAM_KEY = "sk-ant-upstream"


def golden(prefix: str) -> list[Any]:
    files = sorted(GOLDEN.glob(f"{prefix}_*.json"))
    assert files, f"no {prefix} fixtures in {GOLDEN}"
    return [pytest.param(json.loads(file.read_text()), id=file.stem) for file in files]


def without_created(value: Any) -> Any:
    return {key: item for key, item in value.items() if key != "created"} if isinstance(value, dict) else value


def decode(chunks: list[bytes]) -> list[Any]:
    """SSE bytes -> the JSON of each event, "[DONE]" as a string."""
    events = sse.Decoder().feed(b"".join(chunks))
    return [event.data.decode() if event.data == b"[DONE]" else orjson.loads(event.data) for event in events]


# -- golden translations


@pytest.mark.parametrize("case", golden("request"))
def test_request_translates_openai_to_anthropic(case: dict[str, Any]) -> None:
    out = request_body(case["openai"], case["upstream_model"], stream=case.get("stream", False))
    assert out == case["anthropic"]


@pytest.mark.parametrize("case", golden("response"))
def test_response_translates_anthropic_to_openai(case: dict[str, Any]) -> None:
    out = response_body(case["anthropic"], created=0, json_tool=case.get("json_tool", False))
    assert without_created(out) == case["openai"]


@pytest.mark.parametrize("case", golden("stream"))
def test_stream_translates_anthropic_events_to_openai_chunks(case: dict[str, Any]) -> None:
    translator = StreamTranslator(
        "claude", include_usage=case["include_usage"], json_tool=case.get("json_tool", False), created=0
    )
    chunks: list[bytes] = []
    for event in case["anthropic"]:
        chunks += translator.feed(event)
    assert [without_created(chunk) for chunk in decode(chunks)] == case["openai"]
    assert translator.done
    expected = case["usage"]
    assert translator.usage == Usage(
        expected["prompt_tokens"],
        expected["completion_tokens"],
        expected["prompt_tokens_details"]["cached_tokens"],
        expected["completion_tokens_details"]["reasoning_tokens"],
    )


# -- request edge cases


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "claude", "messages": [{"role": "user", "content": "hi"}], **fields}


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"})],
)
def test_tool_choice_strings_map_to_anthropic_types(choice: str, expected: dict[str, Any]) -> None:
    assert request_body(chat(tools=[WEATHER], tool_choice=choice), "m")["tool_choice"] == expected


def test_parallel_tool_calls_false_without_tool_choice_disables_parallel_use_on_auto() -> None:
    out = request_body(chat(tools=[WEATHER], parallel_tool_calls=False), "m")
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_response_format_with_thinking_offers_the_json_tool_without_forcing_it() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    out = request_body(chat(response_format=fmt, reasoning_effort="low"), "m")
    assert [tool["name"] for tool in out["tools"]] == ["json_response"]
    assert "tool_choice" not in out


def test_reasoning_effort_low_raises_a_small_max_tokens_above_the_budget() -> None:
    out = request_body(chat(reasoning_effort="low", max_tokens=100), "m")
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert out["max_tokens"] == 1124


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(n=2), "n"),
        (chat(reasoning_effort="extreme"), "reasoning_effort"),
        (chat(tool_choice={"type": "allowed_tools"}, tools=[WEATHER]), "tool_choice"),
        (chat(tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0]"),
        (
            {"model": "c", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0]",
        ),
        (
            {"model": "c", "messages": [{"role": "tool", "content": "42"}]},
            "messages[0].tool_call_id",
        ),
    ],
)
def test_requests_anthropic_cannot_serve_are_invalid(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        request_body(body, "m")
    assert caught.value.status == 400
    assert caught.value.param == param


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", "42"])
def test_tool_call_arguments_that_are_not_a_json_object_are_invalid(arguments: str) -> None:
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call]}]
    with pytest.raises(InvalidRequest) as caught:
        request_body({"model": "c", "messages": messages}, "m")
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"


@pytest.mark.parametrize("url", ["data:image/png,rawbytes", "ftp://example.com/cat.png", "cat.png"])
def test_image_urls_that_are_neither_http_nor_base64_data_are_invalid(url: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    with pytest.raises(InvalidRequest):
        request_body({"model": "c", "messages": [{"role": "user", "content": [part]}]}, "m")


# -- stream edge cases


def test_stream_that_ends_without_message_stop_ends_with_an_error_event() -> None:
    translator = StreamTranslator("claude", include_usage=False, created=0)
    start = {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3}}}
    translator.feed(start)
    events = decode(translator.end())
    assert events[0]["error"]["type"] == "upstream_error"
    assert "message_stop" in events[0]["error"]["message"]
    assert translator.done and translator.end() == []


def test_stream_ignores_unknown_events_and_malformed_data_ends_it() -> None:
    translator = StreamTranslator("claude", include_usage=False, created=0)
    assert translator.feed({"type": "some_future_event", "x": 1}) == []
    assert translator.feed({"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta"}}) == []
    assert "error" in decode(translator.feed_data(b"{not json"))[0]
    assert translator.done


# -- error mapping


@pytest.mark.parametrize(
    ("status", "kind", "client_status", "code"),
    [
        (401, "authentication_error", 502, "upstream_auth_error"),
        (403, "permission_error", 502, "upstream_auth_error"),
        (400, "invalid_request_error", 400, None),
        (404, "not_found_error", 404, None),
        (429, "rate_limit_error", 429, None),
        (500, "api_error", 502, "upstream_500"),
        (529, "overloaded_error", 503, "upstream_529"),
    ],
)
def test_anthropic_errors_map_to_openai_errors(status: int, kind: str, client_status: int, code: str | None) -> None:
    body = orjson.dumps({"type": "error", "error": {"type": kind, "message": "boom"}, "request_id": "req_1"})
    error = translate_error("claude", status, body, {"Retry-After": "7"})
    assert (error.status, error.code) == (client_status, code)
    assert "boom" in error.message
    if client_status != 502:
        assert error.headers == {"Retry-After": "7"}


def test_error_body_that_is_not_json_keeps_its_text() -> None:
    error = translate_error("claude", 502, b"<html>Bad gateway</html>", {})
    assert error.status == 502 and "Bad gateway" in error.message


# -- the provider over HTTP, against the fake


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeServer]:
    server = FakeServer(fake.create(UPSTREAM_KEY)).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _calm(upstream: FakeServer) -> Iterator[None]:
    yield
    upstream.app["faults"].errors.clear()


async def open_provider(upstream: FakeServer, key: str = UPSTREAM_KEY) -> AnthropicProvider:
    settings = ProviderSettings(type="anthropic", base_url=upstream.url + "/v1", api_key=key)
    provider = AnthropicProvider("claude", settings)
    await provider.start()
    return provider


@pytest.fixture
async def provider(upstream: FakeServer) -> AsyncIterator[AnthropicProvider]:
    provider = await open_provider(upstream)
    yield provider
    await provider.close()


def call(body: dict[str, Any], *, stream: bool = False, kind: Any = "chat") -> Call:
    return Call(kind, body, orjson.dumps(body), "claude-sonnet-4-5", stream=stream)


async def collect(provider: AnthropicProvider, body: dict[str, Any]) -> tuple[list[Any], Usage]:
    streamed = await provider.stream(call(body, stream=True))
    chunks = [chunk async for chunk in streamed.chunks]
    return decode(chunks), streamed.usage


def joined(events: list[Any], field: str) -> str:
    deltas = [event["choices"][0]["delta"] for event in events if isinstance(event, dict) and event.get("choices")]
    return "".join(delta.get(field) or "" for delta in deltas)


async def test_complete_sends_anthropic_headers_and_returns_an_openai_answer(
    provider: AnthropicProvider, upstream: FakeServer
) -> None:
    body = chat(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}])
    reply = await provider.complete(call(body))
    answer = orjson.loads(reply.body)
    record = upstream.app["record"]
    assert record.path == "/v1/messages"
    assert record.headers["x-api-key"] == UPSTREAM_KEY
    assert record.headers["anthropic-version"] == "2023-06-01"
    assert orjson.loads(record.body)["system"] == "Be brief."
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "claude-sonnet-4-5"
    assert answer["choices"][0]["message"]["content"] == "You said: hello there"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert reply.usage == Usage(prompt_tokens=4, completion_tokens=4)
    assert answer["usage"]["total_tokens"] == 8


async def test_complete_tool_call_then_tool_result_round_trip(provider: AnthropicProvider) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    question = {"role": "user", "content": "weather in Paris"}
    first = orjson.loads((await provider.complete(call(chat(messages=[question], tools=[tool])))).body)
    message = first["choices"][0]["message"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    result = {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "15 degrees"}
    second = await provider.complete(call(chat(messages=[question, message, result], tools=[tool])))
    answer = orjson.loads(second.body)["choices"][0]["message"]["content"]
    assert answer == "The get_weather tool returned: 15 degrees"


async def test_complete_with_reasoning_effort_returns_reasoning_content(provider: AnthropicProvider) -> None:
    reply = await provider.complete(call(chat(reasoning_effort="low")))
    message = orjson.loads(reply.body)["choices"][0]["message"]
    assert message["reasoning_content"] == "The user wrote 1 words."
    assert reply.usage is not None and reply.usage.reasoning_tokens == 5


async def test_complete_with_cached_system_prompt_reports_cached_tokens(provider: AnthropicProvider) -> None:
    system = [{"type": "text", "text": "a long shared preamble", "cache_control": {"type": "ephemeral"}}]
    reply = await provider.complete(
        call(chat(messages=[{"role": "system", "content": system}, {"role": "user", "content": "hi"}]))
    )
    usage = orjson.loads(reply.body)["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4
    assert usage["prompt_tokens"] == 5
    assert reply.usage == Usage(prompt_tokens=5, completion_tokens=3, cached_tokens=4)


async def test_complete_with_json_schema_answers_json_content(provider: AnthropicProvider) -> None:
    schema = {"type": "object", "properties": {"words": {"type": "integer"}}, "required": ["words"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "count", "schema": schema}}
    reply = await provider.complete(
        call(chat(messages=[{"role": "user", "content": "count these words"}], response_format=fmt))
    )
    choice = orjson.loads(reply.body)["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"words": 3}
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]


async def test_complete_sends_images_and_stops_at_a_stop_sequence(provider: AnthropicProvider) -> None:
    content = [
        {"type": "text", "text": "describe these please"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    reply = await provider.complete(call(chat(messages=[{"role": "user", "content": content}])))
    assert orjson.loads(reply.body)["choices"][0]["message"]["content"] == (
        "You said: describe these please [saw 2 image(s): image/png, url]"
    )
    reply = await provider.complete(call(chat(messages=[{"role": "user", "content": "one two three"}], stop="two")))
    choice = orjson.loads(reply.body)["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("You said: one ", "stop")
    reply = await provider.complete(call(chat(messages=[{"role": "user", "content": "one two three"}], max_tokens=2)))
    choice = orjson.loads(reply.body)["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("You said:", "length")


async def test_stream_text_with_usage_chunk(provider: AnthropicProvider) -> None:
    events, usage = await collect(provider, chat(stream=True, stream_options={"include_usage": True}))
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert joined(events, "content") == "You said: hi"
    assert [e["choices"][0]["finish_reason"] for e in events[1:-2]][-1] == "stop"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 3
    assert events[-1] == "[DONE]"
    assert usage == Usage(prompt_tokens=1, completion_tokens=3)


async def test_stream_tool_call_arguments_arrive_in_fragments_under_one_index(
    provider: AnthropicProvider,
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
            },
        },
    }
    events, _ = await collect(
        provider, chat(messages=[{"role": "user", "content": "find cheap flights"}], tools=[tool])
    )
    calls = [c for e in events[:-1] for c in e["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"].startswith("toolu_") and calls[0]["function"] == {"name": "lookup", "arguments": ""}
    assert {c["index"] for c in calls} == {0} and len(calls) > 3
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"query": "flights", "limit": 3}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert not any("usage" in e for e in events[:-1])


async def test_stream_with_reasoning_sends_reasoning_before_content(provider: AnthropicProvider) -> None:
    events, usage = await collect(provider, chat(reasoning_effort="medium"))
    assert joined(events, "reasoning_content") == "The user wrote 1 words."
    assert joined(events, "content") == "You said: hi"
    assert usage.reasoning_tokens == 5 and usage.completion_tokens == 8


async def test_bad_upstream_key_is_a_gateway_fault(upstream: FakeServer) -> None:
    provider = await open_provider(upstream, key="sk-ant-wrong")
    try:
        for attempt in (provider.complete(call(chat())), provider.stream(call(chat(), stream=True))):
            with pytest.raises(FoundryError) as caught:
                await attempt
            assert (caught.value.status, caught.value.code) == (502, "upstream_auth_error")
            assert "invalid x-api-key" in caught.value.message
    finally:
        await provider.close()


async def test_upstream_invalid_request_keeps_status_and_message(provider: AnthropicProvider) -> None:
    body = {
        "model": "c",
        "messages": [{"role": "assistant", "content": "I start"}, {"role": "user", "content": "hi"}],
    }
    with pytest.raises(FoundryError) as caught:
        await provider.complete(call(body))
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"
    assert caught.value.message == 'messages: first message must use the "user" role'


async def test_overloaded_upstream_is_503(provider: AnthropicProvider, upstream: FakeServer) -> None:
    overloaded = orjson.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    upstream.app["faults"].errors.extend([(529, overloaded), (529, overloaded)])
    for attempt in (provider.complete(call(chat())), provider.stream(call(chat(), stream=True))):
        with pytest.raises(FoundryError) as caught:
            await attempt
        assert caught.value.status == 503
        assert "Overloaded" in caught.value.message


@pytest.mark.parametrize("kind", ["completions", "embeddings"])
async def test_non_chat_calls_are_unsupported(provider: AnthropicProvider, upstream: FakeServer, kind: str) -> None:
    before = upstream.app["record"].count
    with pytest.raises(InvalidRequest) as caught:
        await provider.complete(call({"model": "c", "prompt": "hi", "input": "hi"}, kind=kind))
    assert caught.value.code == "unsupported_operation"
    assert "/v1/chat/completions" in caught.value.message
    assert upstream.app["record"].count == before


async def pieces(data: bytes, size: int, closed: list[bool]) -> AsyncGenerator[bytes, None]:
    try:
        for start in range(0, len(data), size):
            yield data[start : start + size]
    finally:
        closed.append(True)


def wire(events: list[dict[str, Any]]) -> bytes:
    return b"".join(sse.encode(orjson.dumps(event), str(event["type"])) for event in events)


async def test_relay_reassembles_events_split_across_reads_and_releases_the_upstream(
    provider: AnthropicProvider,
) -> None:
    case = json.loads((GOLDEN / "stream_tool_use.json").read_text())
    closed: list[bool] = []
    translator = StreamTranslator("claude", include_usage=True, created=0)
    relay = sse.translate(pieces(wire(case["anthropic"]), 7, closed), translator)
    events = decode([chunk async for chunk in relay])
    assert [without_created(event) for event in events] == case["openai"]
    assert closed == [True]


async def test_relay_of_a_cut_off_upstream_ends_with_an_error_event(provider: AnthropicProvider) -> None:
    case = json.loads((GOLDEN / "stream_text.json").read_text())
    closed: list[bool] = []
    translator = StreamTranslator("claude", include_usage=False, created=0)
    relay = sse.translate(pieces(wire(case["anthropic"][:4]), 50, closed), translator)
    events = decode([chunk async for chunk in relay])
    assert joined(events, "content") == "Hello"
    assert "before message_stop" in events[-1]["error"]["message"]
    assert closed == [True]


async def test_fake_upstream_is_understood_by_the_official_sdk(upstream: FakeServer) -> None:
    """The fake's wire format parses with Anthropic's own SDK, whole and streamed."""
    import anthropic as anthropic_sdk

    # This SDK release authenticates with a Bearer header and a newer anthropic-version; pin the
    # documented x-api-key and 2023-06-01 headers that the provider sends and the fake checks.
    headers = {"x-api-key": UPSTREAM_KEY, "anthropic-version": "2023-06-01"}
    client = anthropic_sdk.AsyncAnthropic(
        base_url=upstream.url, api_key=UPSTREAM_KEY, default_headers=headers, max_retries=0
    )
    tool = {"name": "lookup", "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}
    request: dict[str, Any] = {
        "model": "claude-fake-1",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "find flights"}],
        "tools": [tool],
    }
    try:
        message = await client.messages.create(**request)
        assert [block.type for block in message.content] == ["thinking", "tool_use"]
        assert message.stop_reason == "tool_use" and message.usage.input_tokens > 0
        async with client.messages.stream(**request) as stream:
            final = await stream.get_final_message()
        assert final.content[1].input == {"query": "flights"}
        assert final.content[0].signature == message.content[0].signature
        with pytest.raises(anthropic_sdk.BadRequestError, match="max_tokens"):
            await client.messages.create(**{**request, "max_tokens": 1024})
    finally:
        await client.close()

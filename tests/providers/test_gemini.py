"""The Gemini provider: golden translations both ways, then the real HTTP path against the fake."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from openfoundry.config import ProviderSettings
from openfoundry.errors import FoundryError, InvalidRequest
from openfoundry.providers.base import Call, Usage
from openfoundry.providers.gemini import (
    GeminiProvider,
    StreamTranslator,
    embeddings_request,
    embeddings_response,
    guess_image_type,
    request_body,
    response_body,
    translate_error,
)
from openfoundry.wire import sse
from tests.fakes import gemini as fake
from tests.fakes.server import FakeServer

GOLDEN = Path(__file__).parent.parent / "golden" / "gemini"
UPSTREAM_KEY = "gemini-upstream-key"


def golden(prefix: str) -> list[Any]:
    files = sorted(GOLDEN.glob(f"{prefix}_*.json"))
    assert files, f"no {prefix} fixtures in {GOLDEN}"
    return [pytest.param(json.loads(file.read_text()), id=file.stem) for file in files]


def without_created(value: Any) -> Any:
    return {key: item for key, item in value.items() if key != "created"} if isinstance(value, dict) else value


def counter() -> Callable[[], str]:
    """Tool call ids call_0, call_1, ... in place of random ones."""
    numbers = itertools.count()
    return lambda: f"call_{next(numbers)}"


def decode(chunks: list[bytes]) -> list[Any]:
    """SSE bytes -> the JSON of each event, "[DONE]" as a string."""
    events = sse.Decoder().feed(b"".join(chunks))
    return [event.data.decode() if event.data == b"[DONE]" else orjson.loads(event.data) for event in events]


# -- golden translations


@pytest.mark.parametrize("case", golden("request"))
def test_request_translates_openai_to_gemini(case: dict[str, Any]) -> None:
    assert request_body(case["openai"]) == case["gemini"]


@pytest.mark.parametrize("case", golden("response"))
def test_response_translates_gemini_to_openai(case: dict[str, Any]) -> None:
    out = response_body(case["gemini"], case["model"], created=0, call_id=counter())
    assert without_created(out) == case["openai"]


@pytest.mark.parametrize("case", golden("stream"))
def test_stream_translates_gemini_events_to_openai_chunks(case: dict[str, Any]) -> None:
    translator = StreamTranslator(
        "gemini", case["model"], include_usage=case["include_usage"], created=0, call_id=counter()
    )
    chunks: list[bytes] = []
    for event in case["gemini"]:
        chunks += translator.feed(event)
    chunks += translator.end()
    assert [without_created(chunk) for chunk in decode(chunks)] == case["openai"]
    assert translator.done
    assert translator.usage == Usage(**case["usage"])


@pytest.mark.parametrize("case", golden("embeddings"))
def test_embeddings_translate_both_ways(case: dict[str, Any]) -> None:
    assert embeddings_request(case["openai_request"], case["model"]) == case["gemini_request"]
    answer = embeddings_response(case["gemini_response"], case["openai_request"], case["model"])
    assert answer == case["openai_response"]


# -- request edge cases


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gemini", "messages": [{"role": "user", "content": "hi"}], **fields}


WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_maps_to_function_calling_modes(choice: Any, expected: dict[str, Any]) -> None:
    assert request_body(chat(tools=[WEATHER], tool_choice=choice))["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "toolConfig" not in request_body(chat(tool_choice="none"))


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 512), ("low", 1024), ("medium", 8192), ("high", 24576)])
def test_reasoning_effort_sets_a_thinking_budget_and_asks_for_thoughts(effort: str, budget: int) -> None:
    config = request_body(chat(reasoning_effort=effort))["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": budget, "includeThoughts": True}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(reasoning_effort="extreme"), "reasoning_effort"),
        (chat(tools=[WEATHER], tool_choice={"type": "allowed_tools"}), "tool_choice"),
        (chat(tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0]"),
        (chat(response_format={"type": "xml"}), "response_format"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages[0]"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "function", "content": "42"}]}, "messages[0].role"),
        ({"messages": [{"role": "tool", "tool_call_id": "call_x", "content": "42"}]}, "messages[0].tool_call_id"),
    ],
)
def test_requests_gemini_cannot_serve_are_invalid(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        request_body(body)
    assert (caught.value.status, caught.value.param) == (400, param)


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", "42"])
def test_tool_call_arguments_that_are_not_a_json_object_are_invalid(arguments: str) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    with pytest.raises(InvalidRequest) as caught:
        request_body({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call]}]})
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"
    assert caught.value.code == "invalid_value"


@pytest.mark.parametrize(
    "url", ["data:image/png,rawbytes", "ftp://example.com/cat.png", "cat.png", "data:;base64,AA=="]
)
def test_image_urls_that_are_neither_http_nor_base64_data_are_invalid(url: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    with pytest.raises(InvalidRequest):
        request_body({"messages": [{"role": "user", "content": [part]}]})


@pytest.mark.parametrize(
    ("url", "mime"),
    [
        ("https://x.test/a.PNG", "image/png"),
        ("https://x.test/a.jpg#frag", "image/jpeg"),
        ("https://x.test/a.heic", "image/heic"),
        ("https://x.test/a.gif?v=2", "image/gif"),
        ("https://x.test/files/abc123", "image/jpeg"),
    ],
)
def test_image_mime_type_is_guessed_from_the_url_extension(url: str, mime: str) -> None:
    assert guess_image_type(url) == mime


@pytest.mark.parametrize(("content", "result"), [("15", 15), ("[1, 2]", [1, 2]), ("sunny", "sunny"), ("", "")])
def test_tool_results_are_parsed_as_json_where_they_are_json(content: str, result: Any) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": content},
    ]
    turn = request_body({"messages": messages})["contents"][-1]
    assert turn == {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"result": result}}}]}


def test_audio_and_file_parts_go_inline() -> None:
    content = [
        {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
    ]
    parts = request_body({"messages": [{"role": "user", "content": content}]})["contents"][0]["parts"]
    assert parts == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGR"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
    ]


def test_empty_assistant_turns_are_left_out_and_neighbours_merge() -> None:
    messages = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "two"},
    ]
    assert request_body({"messages": messages})["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]}
    ]


def test_max_tokens_zero_is_sent_and_a_plain_request_has_no_generation_config() -> None:
    assert "generationConfig" not in request_body(chat())
    assert request_body(chat(max_completion_tokens=0, max_tokens=9))["generationConfig"] == {"maxOutputTokens": 0}


# -- response and stream edge cases


def test_prompt_blocked_before_any_candidate_is_a_content_filter_error() -> None:
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}}
    with pytest.raises(InvalidRequest) as caught:
        response_body(blocked, "gemini-2.5-flash", created=0)
    assert (caught.value.status, caught.value.code) == (400, "content_filter")
    assert "PROHIBITED_CONTENT" in caught.value.message
    translator = StreamTranslator("gemini", "gemini-2.5-flash", include_usage=True, created=0)
    events = decode(translator.feed(blocked))
    assert events[0]["error"]["code"] == "content_filter"
    assert translator.done and translator.end() == []


def test_response_without_response_id_gets_a_chatcmpl_id_and_unique_call_ids() -> None:
    call = {"functionCall": {"name": "f", "args": {}}}
    payload = {"candidates": [{"content": {"role": "model", "parts": [call, call]}, "finishReason": "STOP"}]}
    out = response_body(payload, "gemini-2.5-flash", created=0)
    assert out["id"].startswith("chatcmpl-")
    ids = [c["id"] for c in out["choices"][0]["message"]["tool_calls"]]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)


def test_stream_that_ends_without_a_finish_reason_ends_with_an_error_event() -> None:
    translator = StreamTranslator("gemini", "m", include_usage=False, created=0)
    translator.feed({"candidates": [{"content": {"role": "model", "parts": [{"text": "Once"}]}}]})
    events = decode(translator.end())
    assert events[0]["error"]["type"] == "upstream_error"
    assert "before a finishReason" in events[0]["error"]["message"]
    assert translator.done and translator.end() == []


def test_stream_of_nothing_is_an_error_and_malformed_data_ends_it() -> None:
    assert "error" in decode(StreamTranslator("gemini", "m", include_usage=False).end())[0]
    translator = StreamTranslator("gemini", "m", include_usage=False, created=0)
    assert "error" in decode(translator.feed_data(b"{not json"))[0]
    assert translator.done and translator.feed_data(b"{}") == []


def test_stream_with_two_candidates_keeps_each_on_its_own_index() -> None:
    translator = StreamTranslator("gemini", "m", include_usage=False, created=0)
    chunks = translator.feed(
        {
            "candidates": [
                {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
                {"content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1},
            ]
        }
    )
    events = decode(chunks + translator.end())
    finishes = {e["choices"][0]["index"]: e["choices"][0]["finish_reason"] for e in events[:-1] if e["choices"]}
    assert finishes == {0: "stop", 1: "length"}
    assert events[-1] == "[DONE]"


# -- error mapping


def google_error(status: int, name: str, message: str = "boom", details: list[Any] | None = None) -> bytes:
    return orjson.dumps({"error": {"code": status, "message": message, "status": name, "details": details or []}})


API_KEY_INVALID = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]


@pytest.mark.parametrize(
    ("status", "name", "details", "client_status", "code"),
    [
        (400, "INVALID_ARGUMENT", API_KEY_INVALID, 502, "upstream_auth_error"),
        (403, "PERMISSION_DENIED", None, 502, "upstream_auth_error"),
        (401, "UNAUTHENTICATED", None, 502, "upstream_auth_error"),
        (400, "INVALID_ARGUMENT", None, 400, None),
        (400, "FAILED_PRECONDITION", None, 400, None),
        (404, "NOT_FOUND", None, 404, "model_not_found"),
        (429, "RESOURCE_EXHAUSTED", None, 429, "rate_limit_exceeded"),
        (500, "INTERNAL", None, 502, "upstream_500"),
        (503, "UNAVAILABLE", None, 503, "upstream_503"),
        (504, "DEADLINE_EXCEEDED", None, 504, "upstream_504"),
    ],
)
def test_gemini_errors_map_to_openai_errors(
    status: int, name: str, details: list[Any] | None, client_status: int, code: str | None
) -> None:
    error = translate_error("gemini", status, google_error(status, name, details=details), {"Retry-After": "7"})
    assert (error.status, error.code) == (client_status, code)
    assert "boom" in error.message
    if client_status != 502:
        assert error.headers == {"Retry-After": "7"}


def test_rate_limit_without_retry_after_takes_the_delay_from_retry_info() -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37.2s"},
    ]
    error = translate_error("gemini", 429, google_error(429, "RESOURCE_EXHAUSTED", details=details), {})
    assert (error.status, error.type, error.headers) == (429, "rate_limit_error", {"Retry-After": "38"})


def test_error_wrapped_in_an_array_and_error_that_is_not_json_keep_their_message() -> None:
    wrapped = b"[" + google_error(400, "INVALID_ARGUMENT", "bad field") + b"]"
    assert translate_error("gemini", 400, wrapped, {}).message == "bad field"
    error = translate_error("gemini", 502, b"<html>Bad gateway</html>", {})
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
    faults = upstream.app["faults"]
    faults.errors.clear()
    faults.retry_after, faults.failure_rate, faults.failure, faults.cut_after = None, 0.0, "500", None


async def open_provider(upstream: FakeServer, key: str = UPSTREAM_KEY) -> GeminiProvider:
    settings = ProviderSettings(type="gemini", base_url=upstream.url + "/v1beta", api_key=key)
    provider = GeminiProvider("gemini", settings)
    await provider.start()
    return provider


@pytest.fixture
async def provider(upstream: FakeServer) -> AsyncIterator[GeminiProvider]:
    provider = await open_provider(upstream)
    yield provider
    await provider.close()


def call(body: dict[str, Any], *, stream: bool = False, kind: Any = "chat", model: str = "gemini-2.5-flash") -> Call:
    return Call(kind, body, orjson.dumps(body), model, stream=stream)


async def collect(
    provider: GeminiProvider, body: dict[str, Any], model: str = "gemini-2.5-flash"
) -> tuple[list[Any], Usage]:
    streamed = await provider.stream(call(body, stream=True, model=model))
    chunks = [chunk async for chunk in streamed.chunks]
    return decode(chunks), streamed.usage


def joined(events: list[Any], field: str) -> str:
    deltas = [event["choices"][0]["delta"] for event in events if isinstance(event, dict) and event.get("choices")]
    return "".join(delta.get(field) or "" for delta in deltas)


async def test_complete_sends_the_key_header_and_returns_an_openai_answer(
    provider: GeminiProvider, upstream: FakeServer
) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question here"},
    ]
    reply = await provider.complete(call(chat(messages=messages)))
    answer = orjson.loads(reply.body)
    record = upstream.app["record"]
    assert record.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert record.headers["x-goog-api-key"] == UPSTREAM_KEY
    assert orjson.loads(record.body)["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "gemini-2.5-flash"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "You said: second question here"}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert reply.usage == Usage(prompt_tokens=9, completion_tokens=5)
    assert answer["usage"]["total_tokens"] == 14


async def test_complete_tool_call_then_tool_result_round_trip(provider: GeminiProvider) -> None:
    question = {"role": "user", "content": "weather in Paris"}
    first = orjson.loads((await provider.complete(call(chat(messages=[question], tools=[WEATHER])))).body)
    message = first["choices"][0]["message"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    result = {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "15 degrees"}
    second = await provider.complete(call(chat(messages=[question, message, result], tools=[WEATHER])))
    answer = orjson.loads(second.body)["choices"][0]["message"]["content"]
    assert answer == "The get_weather tool returned: 15 degrees"


async def test_gemini_3_tool_round_trip_needs_the_thought_signature_echoed_back(provider: GeminiProvider) -> None:
    question = {"role": "user", "content": "weather in Oslo"}
    first = await provider.complete(call(chat(messages=[question], tools=[WEATHER]), model="gemini-3.5-flash"))
    message = orjson.loads(first.body)["choices"][0]["message"]
    assert message["tool_calls"][0]["extra_content"]["google"]["thought_signature"]
    result = {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "cold"}
    second = await provider.complete(call(chat(messages=[question, message, result]), model="gemini-3.5-flash"))
    assert orjson.loads(second.body)["choices"][0]["message"]["content"] == "The get_weather tool returned: cold"
    del message["tool_calls"][0]["extra_content"]
    with pytest.raises(FoundryError) as caught:
        await provider.complete(call(chat(messages=[question, message, result]), model="gemini-3.5-flash"))
    assert caught.value.status == 400 and "thought_signature" in caught.value.message


async def test_complete_with_reasoning_effort_returns_reasoning_content(provider: GeminiProvider) -> None:
    reply = await provider.complete(call(chat(reasoning_effort="low")))
    message = orjson.loads(reply.body)["choices"][0]["message"]
    assert message["reasoning_content"] == "The user wrote 1 words."
    assert reply.usage == Usage(prompt_tokens=1, completion_tokens=8, reasoning_tokens=5)


async def test_complete_with_json_schema_answers_json_content(provider: GeminiProvider) -> None:
    schema = {"type": "object", "properties": {"words": {"type": "integer"}}, "required": ["words"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "count", "schema": schema}}
    reply = await provider.complete(
        call(chat(messages=[{"role": "user", "content": "count these words"}], response_format=fmt))
    )
    assert json.loads(orjson.loads(reply.body)["choices"][0]["message"]["content"]) == {"words": 3}


async def test_complete_sends_images_and_honours_stop_max_tokens_and_n(provider: GeminiProvider) -> None:
    content = [
        {"type": "text", "text": "describe these please"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    reply = await provider.complete(call(chat(messages=[{"role": "user", "content": content}])))
    assert orjson.loads(reply.body)["choices"][0]["message"]["content"] == (
        "You said: describe these please [saw 2 image(s): image/png, url]"
    )
    one_two_three = [{"role": "user", "content": "one two three"}]
    choice = orjson.loads((await provider.complete(call(chat(messages=one_two_three, stop="two")))).body)["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("You said: one ", "stop")
    reply = await provider.complete(call(chat(messages=one_two_three, max_tokens=2, n=2)))
    choices = orjson.loads(reply.body)["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "You said:", "length"),
        (1, "You said:", "length"),
    ]


async def test_stream_text_with_usage_chunk(provider: GeminiProvider, upstream: FakeServer) -> None:
    events, usage = await collect(provider, chat(stream=True, stream_options={"include_usage": True}))
    record = upstream.app["record"]
    assert record.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert record.query == {"alt": "sse"}
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert joined(events, "content") == "You said: hi"
    assert [e["choices"][0]["finish_reason"] for e in events[1:-2]][-1] == "stop"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 3
    assert events[-1] == "[DONE]"
    assert usage == Usage(prompt_tokens=1, completion_tokens=3)


async def test_stream_tool_call_arrives_whole_under_one_index(provider: GeminiProvider) -> None:
    events, usage = await collect(provider, chat(messages=[{"role": "user", "content": "find Rome"}], tools=[WEATHER]))
    calls = [c for e in events[:-1] for c in e["choices"][0]["delta"].get("tool_calls", [])]
    assert len(calls) == 1 and calls[0]["index"] == 0 and calls[0]["id"].startswith("call_")
    assert calls[0]["function"] == {"name": "get_weather", "arguments": '{"city":"Rome"}'}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert not any("usage" in e for e in events[:-1])
    assert usage.prompt_tokens > 0


async def test_stream_with_reasoning_sends_reasoning_before_content(provider: GeminiProvider) -> None:
    events, usage = await collect(provider, chat(reasoning_effort="medium"))
    assert joined(events, "reasoning_content") == "The user wrote 1 words."
    assert joined(events, "content") == "You said: hi"
    assert usage == Usage(prompt_tokens=1, completion_tokens=8, reasoning_tokens=5)


async def test_embeddings_as_floats_and_as_base64(provider: GeminiProvider, upstream: FakeServer) -> None:
    body = {"model": "gemini-embed", "input": ["a b", "c"], "dimensions": 4}
    reply = await provider.complete(call(body, kind="embeddings", model="gemini-embedding-001"))
    answer = orjson.loads(reply.body)
    assert upstream.app["record"].path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [item["embedding"] for item in answer["data"]] == [fake.vector("a b", 4), fake.vector("c", 4)]
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert reply.usage == Usage(prompt_tokens=3)
    packed = await provider.complete(
        call({"input": "a b", "encoding_format": "base64"}, kind="embeddings", model="gemini-embedding-001")
    )
    assert isinstance(orjson.loads(packed.body)["data"][0]["embedding"], str)


async def test_bad_upstream_key_is_a_gateway_fault(upstream: FakeServer) -> None:
    provider = await open_provider(upstream, key="wrong-key")
    try:
        attempts = [
            provider.complete(call(chat())),
            provider.stream(call(chat(), stream=True)),
            provider.complete(call({"input": "x"}, kind="embeddings", model="gemini-embedding-001")),
        ]
        for attempt in attempts:
            with pytest.raises(FoundryError) as caught:
                await attempt
            assert (caught.value.status, caught.value.code) == (502, "upstream_auth_error")
            assert "API key not valid" in caught.value.message
    finally:
        await provider.close()


async def test_missing_model_is_model_not_found(provider: GeminiProvider) -> None:
    for attempt in (
        provider.complete(call(chat(), model="missing-model")),
        provider.stream(call(chat(), stream=True, model="missing-model")),
    ):
        with pytest.raises(FoundryError) as caught:
            await attempt
        assert (caught.value.status, caught.value.code) == (404, "model_not_found")
        assert "models/missing-model is not found" in caught.value.message


async def test_upstream_invalid_request_keeps_status_and_message(provider: GeminiProvider) -> None:
    with pytest.raises(FoundryError) as caught:
        await provider.complete(call({"model": "g", "messages": []}))
    assert (caught.value.status, caught.value.type) == (400, "invalid_request_error")
    assert "contents is not specified" in caught.value.message


async def test_rate_limited_upstream_is_429_with_retry_after(provider: GeminiProvider, upstream: FakeServer) -> None:
    exhausted = google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
    upstream.app["faults"].errors.extend([(429, exhausted), (429, exhausted)])
    upstream.app["faults"].retry_after = "12"
    for attempt in (provider.complete(call(chat())), provider.stream(call(chat(), stream=True))):
        with pytest.raises(FoundryError) as caught:
            await attempt
        assert (caught.value.status, caught.value.code) == (429, "rate_limit_exceeded")
        assert caught.value.headers == {"Retry-After": "12"}


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [("malformed", 502, "upstream_malformed"), ("reset", 502, "upstream_unavailable"), ("503", 503, "upstream_503")],
)
async def test_broken_upstream_answers_are_gateway_errors(
    provider: GeminiProvider, upstream: FakeServer, failure: str, status: int, code: str
) -> None:
    upstream.app["faults"].failure, upstream.app["faults"].failure_rate = failure, 1.0
    with pytest.raises(FoundryError) as caught:
        await provider.complete(call(chat()))
    assert (caught.value.status, caught.value.code) == (status, code)


async def test_stream_cut_by_the_upstream_raises_after_what_arrived(
    provider: GeminiProvider, upstream: FakeServer
) -> None:
    upstream.app["faults"].cut_after = 2
    streamed = await provider.stream(call(chat(messages=[{"role": "user", "content": "one two three four"}])))
    chunks: list[bytes] = []
    with pytest.raises(FoundryError) as caught:
        async for chunk in streamed.chunks:
            chunks.append(chunk)
    assert joined(decode(chunks), "content") == "You said:"
    assert caught.value.code == "upstream_unavailable"


@pytest.mark.parametrize("kind", ["completions", "embeddings"])
async def test_operations_gemini_lacks_are_unsupported(
    provider: GeminiProvider, upstream: FakeServer, kind: str
) -> None:
    before = upstream.app["record"].count
    with pytest.raises(InvalidRequest) as caught:
        if kind == "completions":
            await provider.complete(call({"model": "g", "prompt": "hi"}, kind=kind))
        else:
            await provider.stream(call({"model": "g", "input": "hi"}, kind=kind, stream=True))
    assert caught.value.code == "unsupported_operation"
    assert upstream.app["record"].count == before


async def pieces(data: bytes, size: int, closed: list[bool]) -> AsyncGenerator[bytes, None]:
    try:
        for start in range(0, len(data), size):
            yield data[start : start + size]
    finally:
        closed.append(True)


def wire(events: list[dict[str, Any]]) -> bytes:
    """Gemini's SSE framing: one data line per event, ended by CRLF CRLF."""
    return b"".join(b"data: " + orjson.dumps(event) + b"\r\n\r\n" for event in events)


async def test_relay_reassembles_events_split_across_reads_and_releases_the_upstream(
    provider: GeminiProvider,
) -> None:
    case = json.loads((GOLDEN / "stream_function_call.json").read_text())
    closed: list[bool] = []
    translator = StreamTranslator("gemini", case["model"], include_usage=False, created=0, call_id=counter())
    relay = sse.translate(pieces(wire(case["gemini"]), 7, closed), translator)
    events = decode([chunk async for chunk in relay])
    assert [without_created(event) for event in events] == case["openai"]
    assert closed == [True]


async def test_relay_of_a_cut_off_upstream_ends_with_an_error_event(provider: GeminiProvider) -> None:
    case = json.loads((GOLDEN / "stream_text.json").read_text())
    closed: list[bool] = []
    translator = StreamTranslator("gemini", case["model"], include_usage=False, created=0)
    relay = sse.translate(pieces(wire(case["gemini"][:2]), 50, closed), translator)
    events = decode([chunk async for chunk in relay])
    assert joined(events, "content") == "The sky is blue"
    assert "before a finishReason" in events[-1]["error"]["message"]
    assert closed == [True]


# -- the fake's own wire format


async def test_fake_streams_a_json_array_without_alt_sse_and_takes_the_key_as_a_query(upstream: FakeServer) -> None:
    url = upstream.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "two words"}]}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, params={"key": UPSTREAM_KEY}) as response:
            chunks = json.loads(await response.read())
        async with session.post(url, json=body) as response:
            refused = (response.status, (await response.json())["error"]["status"])
        bad_role = {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}
        async with session.post(url, json=bad_role, headers={"x-goog-api-key": UPSTREAM_KEY}) as response:
            invalid = (response.status, (await response.json())["error"]["message"])
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "You said: two words"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 4
    assert refused == (403, "PERMISSION_DENIED")
    assert invalid == (400, "Please use a valid role: user, model.")


async def test_fake_upstream_is_understood_by_the_official_sdk(upstream: FakeServer) -> None:
    """The fake's wire format parses with Google's own SDK (google-genai): thoughts, a Gemini 3 function call
    round trip with its thought signature, a stream, embeddings and the bad-key error. Skipped where the
    SDK is not installed."""
    from google import genai

    types = genai.types
    options = types.HttpOptions(base_url=upstream.url, api_version="v1beta")
    client = genai.Client(api_key=UPSTREAM_KEY, http_options=options)
    weather = types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER["function"]["parameters"])
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024),
    )
    chat = client.aio.chats.create(model="gemini-3.5-flash", config=config)
    first = await chat.send_message("weather in Lima")
    assert first.function_calls[0].args == {"city": "Lima"}
    assert [part.thought for part in first.candidates[0].content.parts] == [True, None]
    second = await chat.send_message(types.Part.from_function_response(name="get_weather", response={"result": "warm"}))
    assert second.text == "The get_weather tool returned: warm"
    stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="stream me")
    assert "".join([chunk.text or "" async for chunk in stream]) == "You said: stream me"
    embedded = await client.aio.models.embed_content(
        model="gemini-embedding-001", contents=["a b", "c"], config=types.EmbedContentConfig(output_dimensionality=4)
    )
    assert [len(item.values or []) for item in embedded.embeddings or []] == [4, 4]
    bad = genai.Client(api_key="wrong-key", http_options=options)
    with pytest.raises(genai.errors.ClientError, match="API_KEY_INVALID"):
        await bad.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")

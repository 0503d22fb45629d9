"""The OpenAI-compatible surface, driven by the official `openai` SDK against a real server process."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


def test_chat_returns_the_upstream_answer_and_names_the_deployment(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": "hello gateway"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "You said: hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4.1-mini"  # the catalog's upstream name reached the upstream
    assert completion.usage is not None and completion.usage.prompt_tokens == 2
    assert raw.headers["x-foundry-deployment"] == "gpt"
    assert raw.headers["x-foundry-backend"] == "openai"


def test_only_model_is_rewritten_on_the_way_up(client: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    client.chat.completions.create(
        model="grok",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"search_parameters": {"mode": "off"}, "x_custom": [1, 2.5, None]},
    )
    sent = json.loads(fakes["xai"].app["record"].body)
    assert sent["model"] == "grok-4-0709"
    assert sent["search_parameters"] == {"mode": "off"}
    assert sent["x_custom"] == [1, 2.5, None]
    assert fakes["xai"].app["record"].headers["Authorization"] == "Bearer xai-upstream"


def test_xai_specific_fields_survive_the_way_back(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="grok-mini", reasoning_effort="low", messages=[{"role": "user", "content": "please cite this"}]
    )
    message = completion.model_dump()
    assert message["choices"][0]["message"]["reasoning_content"] == "The user wrote 3 words."
    assert message["citations"] == ["https://x.ai/news"]
    usage = message["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 5
    assert usage["completion_tokens"] == 5  # xAI's own count, reasoning excluded, passed through untouched
    assert usage["cost_in_usd_ticks"] > 0


def test_xai_reasoning_streams_through(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="grok-mini",
            reasoning_effort="high",
            messages=[{"role": "user", "content": "think first"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks if c.choices
    )
    assert reasoning.strip() == "The user wrote 2 words."
    usage = chunks[-1].model_dump()["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 5
    assert usage["cost_in_usd_ticks"] > 0


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt",
            messages=[{"role": "user", "content": "stream these four words"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: stream these four words"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6


def test_streaming_without_usage_hides_the_usage_the_gateway_asked_for(
    client: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    chunks = list(
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    sent = json.loads(fakes["openai"].app["record"].body)
    assert sent["stream_options"] == {"include_usage": True}


def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model="gpt", messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type]
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'})
    second = client.chat.completions.create(model="gpt", messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type]
    assert second.choices[0].message.content == 'The get_weather tool returned: {"temp_c": 21}'


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "weather in Oslo"}],
        tools=[WEATHER_TOOL],
        stream=True,  # type: ignore[list-item]
    )
    calls = [d for chunk in stream if chunk.choices for d in chunk.choices[0].delta.tool_calls or []]
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads("".join(c.function.arguments or "" for c in calls)) == {"city": "Oslo"}  # type: ignore[union-attr]


def test_json_schema_output(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "Extract: Ada is 36"}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"name": "36", "age": 4}


def test_image_input(client: openai.OpenAI) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
    completion = client.chat.completions.create(
        model="gpt",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "You said: describe [saw 1 image(s): image/png]"


def test_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="gpt", prompt="one two three four five", max_tokens=3)
    assert completion.choices[0].text == "You said: one"
    assert completion.choices[0].finish_reason == "length"
    streamed = client.completions.create(model="gpt", prompt="alpha beta", stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "You said: alpha beta"


def test_embeddings(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="embed", input=["first text", "second text"])
    assert [item.index for item in result.data] == [0, 1]
    vectors = [item.embedding for item in result.data]
    assert len(vectors[0]) == 8 and vectors[0] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1) < 1e-6
    assert result.usage.prompt_tokens == 4


def test_models_lists_the_deployments(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"gpt", "grok", "grok-mini", "azure-grok", "azure-gpt", "embed"} <= ids
    assert client.models.retrieve("grok").owned_by == "xai"


def test_azure_ai_models_endpoint(client: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    completion = client.chat.completions.create(model="azure-grok", messages=[{"role": "user", "content": "hi azure"}])
    assert completion.choices[0].message.content == "You said: hi azure"
    record = fakes["azure"].app["record"]
    assert record.path == "/models/chat/completions"
    assert record.query == {"api-version": "2024-05-01-preview"}
    assert record.headers["api-key"] == "azure-upstream"
    assert "Authorization" not in record.headers


def test_azure_openai_deployment_url(client: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    chunks = list(
        client.chat.completions.create(model="azure-gpt", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: hi"
    record = fakes["azure"].app["record"]
    assert record.path == "/openai/deployments/my-gpt/chat/completions"
    assert record.query == {"api-version": "2024-10-21"}

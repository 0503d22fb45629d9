"""The same conversations through every wire protocol: one `openai` client, the same answers.

The fakes share one deterministic model (tests/fakes/brain.py), so whatever protocol a deployment's
host speaks, a correct translation gives the client exactly the same content, tool calls and usage.
"""

from __future__ import annotations

import base64
import json

import openai
import pytest

from tests.api.test_openai_surface import WEATHER_TOOL
from tests.harness import ADMIN_KEY, Server

CHAT_DEPLOYMENTS = ["gpt", "grok", "azure-grok", "azure-gpt", "claude", "gemini-flash"]


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


@pytest.mark.parametrize("model", CHAT_DEPLOYMENTS)
def test_system_and_multi_turn(client: openai.OpenAI, model: str) -> None:
    completion = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "second question here"},
        ],
    )
    assert completion.choices[0].message.content == "You said: second question here"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 9
    assert completion.usage.completion_tokens == 5


@pytest.mark.parametrize("model", CHAT_DEPLOYMENTS)
def test_stream_with_usage(client: openai.OpenAI, model: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "count these words please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: count these words please"
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, 6)


@pytest.mark.parametrize("model", CHAT_DEPLOYMENTS)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(client: openai.OpenAI, model: str, stream: bool) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "What is the weather in Lisbon?"}]
    if stream:
        deltas = [
            d
            for chunk in client.chat.completions.create(
                model=model, messages=messages, tools=[WEATHER_TOOL], stream=True
            )  # type: ignore[arg-type]
            if chunk.choices
            for d in chunk.choices[0].delta.tool_calls or []
        ]
        call_id, name = deltas[0].id, deltas[0].function.name  # type: ignore[union-attr]
        arguments = "".join(d.function.arguments or "" for d in deltas)  # type: ignore[union-attr]
        assert all(d.index == 0 for d in deltas)
    else:
        first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type]
        assert first.choices[0].finish_reason == "tool_calls"
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments  # type: ignore[union-attr]
    assert name == "get_weather" and json.loads(arguments) == {"city": "Lisbon"}
    assert call_id
    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call_id, "content": "sunny"})
    second = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type]
    assert second.choices[0].message.content == "The get_weather tool returned: sunny"


@pytest.mark.parametrize("model", CHAT_DEPLOYMENTS)
def test_image_input(client: openai.OpenAI, model: str) -> None:
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 32).decode()
    completion = client.chat.completions.create(
        model=model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{jpeg}"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "You said: what is this [saw 1 image(s): image/jpeg]"


@pytest.mark.parametrize("model", CHAT_DEPLOYMENTS)
def test_stop_and_max_tokens(client: openai.OpenAI, model: str) -> None:
    long = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "one two three four five"}], max_tokens=3
    )
    assert long.choices[0].message.content == "You said: one"
    assert long.choices[0].finish_reason == "length"
    stopped = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "alpha beta gamma"}], stop=["gamma"]
    )
    assert stopped.choices[0].message.content == "You said: alpha beta "
    assert stopped.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", ["gpt", "claude", "gemini-flash"])
def test_json_schema_output(client: openai.OpenAI, model: str) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "I live in Kyoto"}],
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Kyoto"}


@pytest.mark.parametrize("model", ["grok-mini", "claude", "gemini-flash"])
@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_arrives_as_reasoning_content(client: openai.OpenAI, model: str, stream: bool) -> None:
    messages = [{"role": "user", "content": "think about this"}]
    if stream:
        chunks = list(
            client.chat.completions.create(model=model, messages=messages, reasoning_effort="low", stream=True)
        )  # type: ignore[arg-type]
        reasoning = "".join(
            (c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        completion = client.chat.completions.create(model=model, messages=messages, reasoning_effort="low")  # type: ignore[arg-type]
        reasoning = (completion.choices[0].message.model_extra or {}).get("reasoning_content") or ""
        text = completion.choices[0].message.content or ""
    assert reasoning.strip() == "The user wrote 3 words."
    assert text == "You said: think about this"


@pytest.mark.parametrize("model", ["claude", "gemini-flash"])
def test_text_completions_on_a_chat_only_host_is_a_clear_400(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=model, prompt="hello")
    assert caught.value.code == "unsupported_operation"


def test_gemini_embeddings(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="gemini-embed", input=["a b", "c"])
    assert [item.index for item in result.data] == [0, 1]
    assert result.data[0].embedding != result.data[1].embedding

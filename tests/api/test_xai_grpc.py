"""xAI's gRPC API, driven by the official `xai-sdk` client against a real gateway process.

`Client(api_host="localhost:PORT")` is what the SDK documents for a local server: for a host starting
with "localhost:" it uses gRPC's local (plaintext loopback) channel credentials instead of TLS.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import yaml
from xai_sdk import Client
from xai_sdk.chat import image, system, tool, tool_result, user
from xai_sdk.proto import chat_pb2

from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server

DEPLOYMENTS = ["gpt", "claude", "gemini-flash"]
WEATHER = tool(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def grpc_host(server: Server) -> str:
    port = yaml.safe_load(server.config_path.read_text())["server"]["grpc_port"]
    return f"localhost:{port}"


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    client = Client(api_key=ADMIN_KEY, api_host=grpc_host(server), timeout=30)
    yield client
    client.close()


@pytest.mark.parametrize("model", DEPLOYMENTS)
def test_sample_answers_with_usage(client: Client, model: str) -> None:
    chat = client.chat.create(model=model, messages=[system("be brief"), user("hello there friend")])
    response = chat.sample()
    assert response.content == "You said: hello there friend"
    assert response.role == "ROLE_ASSISTANT"
    assert response.finish_reason == "REASON_STOP"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (5, 5)
    assert response.usage.total_tokens == 10
    assert response.created.year >= 2024


@pytest.mark.parametrize("model", DEPLOYMENTS)
def test_stream_every_chunk_is_the_assistant_and_usage_is_cumulative(client: Client, model: str) -> None:
    chat = client.chat.create(model=model, messages=[user("count these words please")])
    steps = list(chat.stream())
    response = steps[-1][0]
    pieces = [chunk.content for _, chunk in steps]
    chunks = [chunk.proto for _, chunk in steps]
    assert "".join(pieces) == "You said: count these words please"
    assert response.content == "You said: count these words please"
    assert all(o.delta.role == chat_pb2.ROLE_ASSISTANT for c in chunks for o in c.outputs)
    assert response.finish_reason == "REASON_STOP"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (4, 6)
    totals = [c.usage.total_tokens for c in chunks]
    assert totals == sorted(totals) and totals[-1] == 10


@pytest.mark.parametrize("model", DEPLOYMENTS)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(client: Client, model: str, stream: bool) -> None:
    chat = client.chat.create(model=model, messages=[user("What is the weather in Lisbon?")], tools=[WEATHER])
    response = list(chat.stream())[-1][0] if stream else chat.sample()
    assert response.finish_reason == "REASON_TOOL_CALLS"
    [call] = response.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Lisbon"}
    assert call.id
    chat.append(response)
    chat.append(tool_result("sunny", tool_call_id=call.id))
    assert chat.sample().content == "The get_weather tool returned: sunny"


@pytest.mark.parametrize("model", DEPLOYMENTS)
def test_image_input(client: Client, model: str) -> None:
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 32).decode()
    chat = client.chat.create(model=model, messages=[user("what is this", image(f"data:image/jpeg;base64,{jpeg}"))])
    assert chat.sample().content == "You said: what is this [saw 1 image(s): image/jpeg]"


def test_max_tokens_and_stop(client: Client) -> None:
    long = client.chat.create(model="gpt", messages=[user("one two three four five")], max_tokens=3)
    response = long.sample()
    assert response.content == "You said: one" and response.finish_reason == "REASON_MAX_LEN"
    stopped = client.chat.create(model="gpt", messages=[user("alpha beta gamma")], stop=["gamma"])
    assert stopped.sample().content == "You said: alpha beta "


def test_structured_output_schema_is_passed_as_json(client: Client) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    chat = client.chat.create(
        model="gpt",
        messages=[user("weather in Porto")],
        response_format=chat_pb2.ResponseFormat(
            format_type=chat_pb2.FORMAT_TYPE_JSON_SCHEMA, schema=json.dumps(schema)
        ),
    )
    assert json.loads(chat.sample().content) == {"city": "Porto"}


def test_deferred_completion(client: Client) -> None:
    chat = client.chat.create(model="claude", messages=[user("later please")])
    response = chat.defer(timeout=dt.timedelta(seconds=20), interval=dt.timedelta(milliseconds=20))
    assert response.content == "You said: later please"


def test_bad_key_is_unauthenticated(server: Server) -> None:
    bad = Client(api_key="not-a-key", api_host=grpc_host(server), timeout=30)
    with pytest.raises(grpc.RpcError) as caught:
        bad.chat.create(model="gpt", messages=[user("hi")]).sample()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        bad.models.list_language_models()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    bad.close()


def test_unknown_model_is_not_found(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.chat.create(model="no-such-model", messages=[user("hi")]).sample()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in (caught.value.details() or "")
    with pytest.raises(grpc.RpcError) as caught:
        list(client.chat.create(model="no-such-model", messages=[user("hi")]).stream())
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_server_side_tools_are_refused(client: Client) -> None:
    web = chat_pb2.Tool(web_search=chat_pb2.WebSearch())
    with pytest.raises(grpc.RpcError) as caught:
        client.chat.create(model="gpt", messages=[user("hi")], tools=[web]).sample()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_models_are_the_deployments(client: Client) -> None:
    names = {m.name for m in client.models.list_language_models()}
    assert set(DEPLOYMENTS) <= names and "embed" not in names
    model = client.models.get_language_model("claude")
    assert model.name == "claude" and model.max_prompt_length > 0
    assert {m.name for m in client.models.list_embedding_models()} >= {"embed"}
    with pytest.raises(grpc.RpcError) as caught:
        client.models.get_language_model("no-such-model")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_upstream_rate_limit_is_resource_exhausted(client: Client, fakes: dict[str, FakeServer]) -> None:
    fakes["openai"].app["faults"].errors.append(
        (429, b'{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}')
    )
    with pytest.raises(grpc.RpcError) as caught:
        client.chat.create(model="gpt-once", messages=[user("hi")]).sample()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Rate limit reached" in (caught.value.details() or "")


def test_stream_cut_upstream_ends_in_an_error_status(client: Client, fakes: dict[str, FakeServer]) -> None:
    fakes["openai"].app["faults"].cut_after = 3
    try:
        seen = []
        with pytest.raises(grpc.RpcError) as caught:
            for _, chunk in client.chat.create(model="gpt-once", messages=[user("one two three four")]).stream():
                seen.append(chunk.content)
    finally:
        fakes["openai"].app["faults"].cut_after = None
    assert seen and caught.value.code() not in (grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN)

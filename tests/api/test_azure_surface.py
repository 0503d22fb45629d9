"""Azure's surfaces: the official `azure-ai-inference` SDK on /models, and `openai` on the Azure OpenAI routes."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import openai
import pytest
from azure.ai.inference import ChatCompletionsClient, EmbeddingsClient
from azure.ai.inference.models import (
    AssistantMessage,
    ChatCompletionsToolCall,
    ChatCompletionsToolDefinition,
    FunctionCall,
    FunctionDefinition,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from openfoundry.api.azure import OLDEST_INFERENCE_VERSION, apply_extra_parameters, check_api_version
from openfoundry.errors import FoundryError
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server

MODELS = ["gpt", "claude", "gemini-flash"]
VERSION = "2024-05-01-preview"
WEATHER = FunctionDefinition(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def send(
    server: Server, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """A raw request: (status, parsed JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def chat_client(server: Server, key: str = ADMIN_KEY, **options: Any) -> ChatCompletionsClient:
    return ChatCompletionsClient(server.url + "/models", AzureKeyCredential(key), retry_total=0, **options)


@pytest.fixture
def chat(server: Server) -> ChatCompletionsClient:
    return chat_client(server)


# -- the pure rules


@pytest.mark.parametrize("version", ["2024-05-01-preview", "2024-05-01", "2024-08-01-preview", "2025-04-01"])
def test_api_versions_from_2024_05_01_preview_are_accepted(version: str) -> None:
    check_api_version(version, OLDEST_INFERENCE_VERSION)


@pytest.mark.parametrize(
    ("version", "code"),
    [
        (None, "MissingApiVersionParameter"),
        ("2024-04-01-preview", "UnsupportedApiVersion"),
        ("2024-04-30", "UnsupportedApiVersion"),
        ("2024-13-01", "UnsupportedApiVersion"),
        ("latest", "UnsupportedApiVersion"),
    ],
)
def test_missing_old_and_malformed_api_versions_are_refused(version: str | None, code: str) -> None:
    with pytest.raises(FoundryError) as caught:
        check_api_version(version, OLDEST_INFERENCE_VERSION)
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, code, "api-version")


@pytest.mark.parametrize(
    ("mode", "kind", "body", "after"),
    [
        ("drop", "chat", {"messages": [], "n": 2, "logprobs": True, "seed": 1}, {"messages": [], "seed": 1}),
        ("pass-through", "chat", {"messages": [], "n": 2}, {"messages": [], "n": 2}),
        ("drop", "embeddings", {"input": "a", "user": "u", "dimensions": 8}, {"input": "a", "dimensions": 8}),
        (
            None,
            "chat",
            {"messages": [], "stop": ["x"], "tool_choice": "auto"},
            {"messages": [], "stop": ["x"], "tool_choice": "auto"},
        ),
    ],
)
def test_extra_parameters_drop_and_pass_through(
    mode: str | None, kind: Any, body: dict[str, Any], after: dict[str, Any]
) -> None:
    changed = apply_extra_parameters(mode, kind, body)
    assert body == after
    assert changed == (mode == "drop")


# -- /models with the azure-ai-inference SDK


@pytest.mark.parametrize("model", MODELS)
def test_chat_completes_on_every_host(chat: ChatCompletionsClient, model: str) -> None:
    result = chat.complete(model=model, messages=[SystemMessage("be brief"), UserMessage("hello azure")])
    assert result.choices[0].message.content == "You said: hello azure"
    assert result.choices[0].finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)


@pytest.mark.parametrize("model", MODELS)
def test_chat_streams_on_every_host(chat: ChatCompletionsClient, model: str) -> None:
    updates = list(chat.complete(model=model, stream=True, messages=[UserMessage("count these words please")]))
    text = "".join(u.choices[0].delta.content or "" for u in updates if u.choices)
    assert text == "You said: count these words please"
    assert [u.choices[0].finish_reason for u in updates if u.choices and u.choices[0].finish_reason] == ["stop"]


@pytest.mark.parametrize("model", MODELS)
def test_tool_call_round_trip(chat: ChatCompletionsClient, model: str) -> None:
    question = UserMessage("What is the weather in Lisbon?")
    tools = [ChatCompletionsToolDefinition(function=WEATHER)]
    first = chat.complete(model=model, messages=[question], tools=tools)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Lisbon"}
    echoed = ChatCompletionsToolCall(
        id=call.id, function=FunctionCall(name="get_weather", arguments=call.function.arguments)
    )
    second = chat.complete(
        model=model,
        tools=tools,
        messages=[question, AssistantMessage(tool_calls=[echoed]), ToolMessage("sunny", tool_call_id=call.id)],
    )
    assert second.choices[0].message.content == "The get_weather tool returned: sunny"


@pytest.mark.parametrize("model", ["embed", "gemini-embed"])
def test_embeddings_client_on_openai_and_gemini_hosts(server: Server, model: str) -> None:
    client = EmbeddingsClient(server.url + "/models", AzureKeyCredential(ADMIN_KEY), retry_total=0)
    result = client.embed(model=model, input=["a b", "c"], input_type="query")
    assert [item.index for item in result.data] == [0, 1]
    assert result.data[0].embedding != result.data[1].embedding


@pytest.mark.parametrize(
    ("model", "info"),
    [
        ("gpt", {"model_name": "gpt-4.1-mini", "model_type": "chat_completion", "model_provider_name": "openai"}),
        (
            "claude",
            {"model_name": "claude-sonnet-4-5", "model_type": "chat_completion", "model_provider_name": "anthropic"},
        ),
        (
            "embed",
            {"model_name": "text-embedding-3-small", "model_type": "embeddings", "model_provider_name": "openai"},
        ),
    ],
)
def test_model_info_names_the_model(chat: ChatCompletionsClient, model: str, info: dict[str, str]) -> None:
    assert dict(chat.get_model_info(params={"model": model})) == info


def test_model_info_without_a_model_is_a_400(server: Server) -> None:
    status, body = send(server, "GET", f"/models/info?api-version={VERSION}", headers={"api-key": ADMIN_KEY})
    assert status == 400
    assert body["error"]["status"] == 400 and body["error"]["param"] == "model"


def test_unknown_parameter_is_a_422_naming_it(server: Server) -> None:
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "n": 1}
    status, answer = send(
        server, "POST", f"/models/chat/completions?api-version={VERSION}", body, {"api-key": ADMIN_KEY}
    )
    assert status == 422
    error = answer["error"]
    assert (error["code"], error["status"], error["param"]) == ("parameter_not_supported", 422, "n")
    assert "['n']" in error["message"]
    assert error["detail"] == {"loc": ["body", "n"], "input": 1}


@pytest.mark.parametrize(("mode", "kept"), [("drop", False), ("pass-through", True)])
def test_extra_parameters_header(server: Server, fakes: dict[str, FakeServer], mode: str, kept: bool) -> None:
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi there"}], "x_custom": 7}
    headers = {"api-key": ADMIN_KEY, "extra-parameters": mode}
    status, answer = send(server, "POST", f"/models/chat/completions?api-version={VERSION}", body, headers)
    assert status == 200 and answer["choices"][0]["message"]["content"] == "You said: hi there"
    sent = json.loads(fakes["openai"].app["record"].body)
    assert ("x_custom" in sent) is kept


def test_model_extras_in_the_sdk_pass_through(chat: ChatCompletionsClient, fakes: dict[str, FakeServer]) -> None:
    result = chat.complete(model="gpt", messages=[UserMessage("extras please")], model_extras={"x_custom": [1, 2]})
    assert result.choices[0].message.content == "You said: extras please"
    assert json.loads(fakes["openai"].app["record"].body)["x_custom"] == [1, 2]


@pytest.mark.parametrize(
    ("version", "code"), [(None, "MissingApiVersionParameter"), ("2024-04-01-preview", "UnsupportedApiVersion")]
)
def test_missing_or_old_api_version_is_a_400(server: Server, version: str | None, code: str) -> None:
    query = f"?api-version={version}" if version else ""
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    status, answer = send(server, "POST", f"/models/chat/completions{query}", body, {"api-key": ADMIN_KEY})
    assert status == 400
    assert answer["error"]["code"] == code and answer["error"]["status"] == 400
    with pytest.raises(HttpResponseError) as caught:
        chat_client(server, api_version="2024-04-01-preview").complete(model="gpt", messages=[UserMessage("hi")])
    assert caught.value.status_code == 400


def test_bad_key_is_a_401_in_azure_shape(server: Server) -> None:
    with pytest.raises(ClientAuthenticationError) as caught:
        chat_client(server, key="wrong-key").complete(model="gpt", messages=[UserMessage("hi")])
    assert caught.value.status_code == 401
    status, body = send(
        server, "POST", f"/models/chat/completions?api-version={VERSION}", {"model": "gpt"}, {"api-key": "wrong"}
    )
    assert status == 401
    assert body == {"error": {"code": "invalid_api_key", "message": "invalid API key", "status": 401}}


def test_unknown_model_is_a_404(chat: ChatCompletionsClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        chat.complete(model="no-such-model", messages=[UserMessage("hi")])
    assert caught.value.error is not None and caught.value.error.code == "model_not_found"


def test_the_deployment_header_names_the_model(server: Server) -> None:
    body = {"messages": [{"role": "user", "content": "by header"}]}
    headers = {"api-key": ADMIN_KEY, "azureml-model-deployment": "claude"}
    status, answer = send(server, "POST", f"/models/chat/completions?api-version={VERSION}", body, headers)
    assert status == 200 and answer["choices"][0]["message"]["content"] == "You said: by header"


# -- Azure OpenAI routes with the openai SDK


@pytest.mark.parametrize("model", MODELS)
def test_azure_openai_deployment_urls_name_the_deployment(server: Server, model: str) -> None:
    client = openai.AzureOpenAI(azure_endpoint=server.url, api_key=ADMIN_KEY, api_version="2024-10-21", max_retries=0)
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "deployment url"}])
    assert completion.choices[0].message.content == "You said: deployment url"
    chunks = list(
        client.chat.completions.create(model=model, stream=True, messages=[{"role": "user", "content": "streamed"}])
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: streamed"


def test_azure_openai_embeddings_and_errors(server: Server) -> None:
    client = openai.AzureOpenAI(azure_endpoint=server.url, api_key=ADMIN_KEY, api_version="2024-10-21", max_retries=0)
    assert len(client.embeddings.create(model="embed", input=["a", "b"]).data) == 2
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    status, body = send(
        server, "POST", "/openai/deployments/gpt/chat/completions", {"messages": []}, {"api-key": ADMIN_KEY}
    )
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"


@pytest.mark.parametrize("model", MODELS)
def test_openai_v1_routes_take_the_model_from_the_body(server: Server, model: str) -> None:
    client = openai.OpenAI(base_url=server.url + "/openai/v1", api_key=ADMIN_KEY, max_retries=0)
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "v1 route"}])
    assert completion.choices[0].message.content == "You said: v1 route"
    assert {"gpt", "claude", "gemini-flash", "embed"} <= {m.id for m in client.models.list()}
    assert len(client.embeddings.create(model="embed", input="one").data) == 1


def test_openapi_describes_the_azure_and_anthropic_routes(server: Server) -> None:
    status, document = send(server, "GET", "/openapi.json")
    assert status == 200
    for path, method in (
        ("/models/chat/completions", "post"),
        ("/models/embeddings", "post"),
        ("/models/info", "get"),
        ("/openai/deployments/{deployment}/chat/completions", "post"),
        ("/openai/v1/models", "get"),
        ("/v1/messages", "post"),
        ("/v1/messages/count_tokens", "post"),
    ):
        assert method in document["paths"][path]
    ids = [op["operationId"] for methods in document["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))

"""Every client surface on a local (llama.cpp) deployment: Azure AI Inference, Anthropic Messages and
xAI's gRPC API, with their official SDKs, against the real Gemma model.

Gemma 3 270M is a base model, so the tests pin the protocol (shapes, stop reasons, usage from the
model's tokenizer, determinism at temperature 0 with a seed), not what it says.
"""

from __future__ import annotations

import anthropic
from azure.ai.inference import ChatCompletionsClient, EmbeddingsClient
from azure.ai.inference.models import UserMessage
from azure.core.credentials import AzureKeyCredential
from xai_sdk import Client
from xai_sdk.chat import user

from tests.api.test_xai_grpc import grpc_host
from tests.harness import ADMIN_KEY, Server


def test_azure_ai_inference_chat_stream_and_embeddings(engine_server: Server) -> None:
    chat = ChatCompletionsClient(engine_server.url + "/models", AzureKeyCredential(ADMIN_KEY), retry_total=0)
    options = {"model": "gemma", "max_tokens": 6, "temperature": 0.0, "seed": 7}
    first = chat.complete(messages=[UserMessage("Name a colour.")], **options)
    again = chat.complete(messages=[UserMessage("Name a colour.")], **options)
    assert first.choices[0].message.content and first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].finish_reason in ("stop", "length")
    assert 0 < first.usage.completion_tokens <= 6 and first.usage.prompt_tokens > 3
    streamed = chat.complete(messages=[UserMessage("Name a colour.")], stream=True, **options)
    text = "".join(update.choices[0].delta.content or "" for update in streamed if update.choices)
    assert text == first.choices[0].message.content
    embeddings = EmbeddingsClient(engine_server.url + "/models", AzureKeyCredential(ADMIN_KEY), retry_total=0)
    vectors = embeddings.embed(model="gemma", input=["red", "blue"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 640  # Gemma 3 270M's width
    assert abs(sum(x * x for x in vectors.data[0].embedding) - 1) < 1e-3


def test_anthropic_messages_create_and_stream(engine_server: Server) -> None:
    client = anthropic.Anthropic(base_url=engine_server.url, api_key=ADMIN_KEY, max_retries=0)
    request = {
        "model": "gemma",
        "max_tokens": 5,
        "extra_body": {"temperature": 0.0},  # this SDK version no longer has the parameter
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    message = client.messages.create(**request)  # type: ignore[call-overload]
    assert message.role == "assistant" and message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert 0 < message.usage.output_tokens <= 5 and message.usage.input_tokens > 2
    with client.messages.stream(**request) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.content[0].text == message.content[0].text  # type: ignore[union-attr]


def test_xai_grpc_sample_and_stream(engine_server: Server) -> None:
    client = Client(api_key=ADMIN_KEY, api_host=grpc_host(engine_server), timeout=60)
    try:
        chat = client.chat.create(model="gemma", messages=[user("Say hi.")], max_tokens=5, temperature=0.0, seed=3)
        sampled = chat.sample()
        assert sampled.content and sampled.finish_reason in ("REASON_STOP", "REASON_MAX_LEN")
        assert 0 < sampled.usage.completion_tokens <= 5
        chat = client.chat.create(model="gemma", messages=[user("Say hi.")], max_tokens=5, temperature=0.0, seed=3)
        streamed = [chunk for _, chunk in chat.stream()]
        assert "".join(chunk.content for chunk in streamed) == sampled.content
    finally:
        client.close()

"""The embedded llama.cpp engine: real generation with Gemma 3 270M through the official `openai` SDK."""

from __future__ import annotations

import base64
import math
import os
import signal
import struct
import threading
import time
import urllib.request

import openai
import pytest

from tests.engines.conftest import engines, wait_ready
from tests.harness import ADMIN_KEY, Server

QUESTION = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture
def client(engine_server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=engine_server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


def test_chat_answers_with_usage_from_the_models_tokenizer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gemma", messages=QUESTION, max_tokens=8, temperature=0)
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.object == "chat.completion" and completion.model == "gemma-3-270m"
    assert completion.usage is not None
    # <bos> + Gemma's turn format around the question: more tokens than the words alone
    assert completion.usage.prompt_tokens > 8
    assert 1 <= completion.usage.completion_tokens <= 8


def test_max_tokens_ends_with_finish_reason_length(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="gemma", prompt="One, two, three, four,", max_tokens=5, temperature=0)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    assert completion.choices[0].text.strip()


def test_same_seed_and_temperature_zero_give_the_same_text(client: openai.OpenAI) -> None:
    def ask() -> str:
        answer = client.completions.create(
            model="gemma", prompt="The capital of France is", max_tokens=12, temperature=0, seed=7
        )
        return answer.choices[0].text

    first = ask()
    assert first and ask() == first
    chats = {
        client.chat.completions.create(model="gemma", messages=QUESTION, max_tokens=10, temperature=0, seed=3)
        .choices[0]
        .message.content
        for _ in range(2)
    }
    assert len(chats) == 1


def test_stop_sequence_ends_the_text_before_it(client: openai.OpenAI) -> None:
    free = client.completions.create(model="gemma", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, seed=1)
    text = free.choices[0].text
    assert "," in text
    stopped = client.completions.create(
        model="gemma", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, seed=1, stop=[","]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].text == text[: text.index(",")]


def test_chat_streams_token_by_token_and_matches_the_whole_answer(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="gemma", messages=QUESTION, max_tokens=10, temperature=0, seed=5)
    chunks = list(
        client.chat.completions.create(
            model="gemma",
            messages=QUESTION,
            max_tokens=10,
            temperature=0,
            seed=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1  # one event per token, not one at the end
    assert "".join(pieces) == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_completions_stream(client: openai.OpenAI) -> None:
    stream = client.completions.create(model="gemma", prompt="Once upon a time", max_tokens=6, stream=True, seed=1)
    events = list(stream)
    assert all(e.object == "text_completion" for e in events)
    assert "".join(e.choices[0].text for e in events if e.choices)
    assert events[-1].choices[0].finish_reason == "length"


def test_prompt_over_the_context_window_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemma", messages=[{"role": "user", "content": "word " * 700}], max_tokens=5
        )
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 512 tokens" in caught.value.message
    with pytest.raises(openai.BadRequestError) as streamed:
        client.completions.create(model="gemma", prompt="word " * 700, max_tokens=5, stream=True)
    assert streamed.value.code == "context_length_exceeded"
    # and the engine still answers
    assert client.completions.create(model="gemma", prompt="Hello", max_tokens=2).choices[0].text is not None


def test_embeddings_are_pooled_unit_vectors(client: openai.OpenAI) -> None:
    answer = client.embeddings.create(model="gemma", input=["a red apple", "a red apple", "quantum chromodynamics"])
    vectors = [item.embedding for item in answer.data]
    assert len(vectors) == 3 and len(vectors[0]) == 640  # Gemma 3 270M's hidden size
    for vector in vectors:
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)
    assert vectors[0] == pytest.approx(vectors[1], abs=1e-5)
    assert vectors[0] != pytest.approx(vectors[2], abs=1e-3)
    assert answer.usage.prompt_tokens > 3
    raw = client.embeddings.create(model="gemma", input="a red apple", encoding_format="base64")
    encoded = raw.data[0].embedding
    decoded = struct.unpack("<640f", base64.b64decode(encoded)) if isinstance(encoded, str) else encoded
    assert list(decoded) == pytest.approx(vectors[0], abs=1e-5)


def test_a_full_queue_is_429_with_retry_after(engine_server: Server) -> None:
    client = openai.OpenAI(base_url=engine_server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    outcomes: list[object] = []

    def ask() -> None:
        try:
            client.completions.create(model="gemma-tiny", prompt="Count: 1, 2, 3,", max_tokens=48, temperature=0)
            outcomes.append("ok")
        except openai.RateLimitError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
    assert outcomes.count("ok") >= 2 and refused  # one slot plus one queue place; the rest refused
    assert int(refused[0].response.headers["retry-after"]) >= 1
    assert refused[0].code == "engine_overloaded"
    assert next(e for e in engines(engine_server) if e["provider"] == "tiny")["rejected"] >= 1


def test_admin_engines_and_metrics_report_each_engine(engine_server: Server, client: openai.OpenAI) -> None:
    client.completions.create(model="gemma", prompt="Hello there", max_tokens=8)
    found = {e["provider"]: e for e in engines(engine_server)}
    local = found["local"]
    assert local["model"] == "google/gemma-3-270m" and local["deployments"] == ["gemma"]
    assert local["state"] == "ready" and local["queue_depth"] == 0 and local["tokens_per_second"] > 0
    assert found["pair"]["replicas_ready"] == 2
    denied = urllib.request.Request(engine_server.url + "/admin/engines")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(denied, timeout=5)
    assert refused.value.code == 401
    with urllib.request.urlopen(engine_server.url + "/metrics", timeout=5) as answer:
        metrics = answer.read().decode()
    assert 'foundry_engine_state{provider="local"} 1.0' in metrics
    assert 'foundry_engine_replicas_ready{provider="pair"} 2.0' in metrics
    assert 'foundry_engine_queue_depth{provider="tiny"}' in metrics


def test_a_killed_replica_is_restarted_and_calls_keep_being_answered(
    engine_server: Server, client: openai.OpenAI
) -> None:
    pair = next(e for e in engines(engine_server) if e["provider"] == "pair")
    victim = pair["replicas"][0]
    os.kill(victim["pid"], signal.SIGKILL)
    for _ in range(4):  # served by the survivor meanwhile
        assert client.completions.create(model="gemma-pair", prompt="Hi", max_tokens=2).choices[0].text is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pair = next(e for e in wait_ready(engine_server) if e["provider"] == "pair")
        if pair["replicas"][0]["restarts"] >= 1:
            break
        time.sleep(0.2)
    replica = pair["replicas"][0]
    assert replica["restarts"] == 1 and replica["state"] == "ready" and replica["pid"] != victim["pid"]


def test_a_call_in_flight_on_a_killed_replica_runs_again_on_another(
    engine_server: Server, client: openai.OpenAI
) -> None:
    wait_ready(engine_server)
    answers: list[openai.types.Completion] = []
    asking = threading.Thread(
        target=lambda: answers.append(
            client.completions.create(model="gemma-pair", prompt="Count: 1, 2,", max_tokens=120, temperature=0)
        )
    )
    asking.start()
    deadline = time.monotonic() + 10
    busy = None
    while busy is None and time.monotonic() < deadline:
        pair = next(e for e in engines(engine_server) if e["provider"] == "pair")
        busy = next((r for r in pair["replicas"] if r["in_flight"]), None)
    assert busy is not None
    os.kill(busy["pid"], signal.SIGKILL)
    asking.join(60)
    assert answers and answers[0].choices[0].finish_reason == "length"
    assert answers[0].usage is not None and answers[0].usage.completion_tokens == 120

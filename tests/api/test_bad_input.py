"""Bad input and upstream trouble end in clear 4xx/5xx answers in OpenAI's error shape, never a crash."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

import openai
import pytest

from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server


def post(server: Server, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        server.url + path,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_openai_error(body: dict[str, Any], code: str | None) -> dict[str, Any]:
    error = body["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"]
    assert error["code"] == code
    return error


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", "invalid_json", None),
        (b"", "invalid_json", None),
        (b"[1, 2]", "invalid_json", None),
        (b'{"model": "gpt"}', "missing_required_parameter", "messages"),
        (b'{"model": "gpt", "messages": "hi"}', "invalid_type", "messages"),
        (b'{"model": "gpt", "messages": []}', "invalid_type", "messages"),
        (b'{"model": "gpt", "messages": [{"role": "robot", "content": "x"}]}', "invalid_value", "messages[0].role"),
        (b'{"model": "gpt", "messages": [{"role": "user", "content": 5}]}', "invalid_type", "messages[0].content"),
        (
            b'{"model": "gpt", "messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}',
            "invalid_type",
            "max_tokens",
        ),
        (
            b'{"model": "gpt", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "invalid_type",
            "stream",
        ),
        (
            b'{"model": "gpt", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            "invalid_type",
            "temperature",
        ),
    ],
)
def test_malformed_chat_requests_get_400(server: Server, body: bytes, code: str, param: str | None) -> None:
    status, answer = post(server, "/v1/chat/completions", body)
    assert status == 400
    error = assert_openai_error(answer, code)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_missing_fields_on_completions_and_embeddings(server: Server) -> None:
    status, answer = post(server, "/v1/completions", b'{"model": "gpt"}')
    assert status == 400 and assert_openai_error(answer, "missing_required_parameter")["param"] == "prompt"
    status, answer = post(server, "/v1/embeddings", b'{"model": "embed", "input": 42}')
    assert status == 400 and assert_openai_error(answer, "invalid_type")["param"] == "input"


def test_unknown_model_is_404_model_not_found(server: Server) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"
    assert "no-such-model" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_body_over_the_limit_is_413() -> None:
    server = Server({"server": {"admin_key": ADMIN_KEY, "max_body_bytes": 4096}}).start()
    try:
        big = json.dumps({"model": "gpt", "messages": [{"role": "user", "content": "x" * 5000}]}).encode()
        status, answer = post(server, "/v1/chat/completions", big)
        assert status == 413
        assert assert_openai_error(answer, "request_too_large")["type"] == "invalid_request_error"
        chunked = _send_chunked(server, big)
        assert chunked.startswith(b"HTTP/1.1 413")
    finally:
        server.stop()


def _send_chunked(server: Server, body: bytes) -> bytes:
    """A body without Content-Length: the limit must hold while it streams in."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            f"Authorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\n\r\n"
        )
        sock.sendall(head.encode())
        for start in range(0, len(body), 1000):
            piece = body[start : start + 1000]
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        return sock.recv(65536)


def test_unknown_route_and_method_use_the_error_shape(server: Server) -> None:
    status, answer = post(server, "/v1/nothing-here", b"{}")
    assert status == 404 and assert_openai_error(answer, "not_found")
    request = urllib.request.Request(server.url + "/v1/chat/completions", method="GET")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 405
    assert_openai_error(json.loads(caught.value.read()), "method_not_allowed")


def test_upstream_errors_keep_their_meaning(server: Server, fakes: dict[str, FakeServer]) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    xai_error = {
        "code": "Client specified an invalid argument",
        "error": "Model grok-4 does not support parameter reasoningEffort.",
    }
    fakes["xai"].app["faults"].errors.append((400, json.dumps(xai_error).encode()))
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="grok", messages=[{"role": "user", "content": "x"}])
    assert bad.value.body["message"] == "Model grok-4 does not support parameter reasoningEffort."  # type: ignore[index]
    assert bad.value.type == "invalid_request_error"

    fakes["openai"].app["faults"].errors.append(
        (429, b'{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}')
    )
    fakes["openai"].app["faults"].retry_after = "7"
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-once", messages=[{"role": "user", "content": "x"}])
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "7"

    fakes["openai"].app["faults"].errors.append((500, b"upstream exploded"))
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="gpt-once", messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 503
    assert failed.value.code == "deployment_unavailable"
    assert "'gpt-once'" in failed.value.message and "upstream exploded" in failed.value.message


def test_a_bad_upstream_key_is_the_gateways_fault_not_the_clients(server: Server, fakes: dict[str, FakeServer]) -> None:
    """xAI answers a bad key with 400; the client must not be told its own key or request is wrong."""
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    refusal = {"code": "Client specified an invalid argument", "error": "Incorrect API key provided: xa***am."}
    fakes["xai"].app["faults"].errors.append((400, json.dumps(refusal).encode()))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="grok", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_auth_error"
    assert "xai" in caught.value.message


def test_read_timeout_is_504_with_a_clear_message(server: Server, fakes: dict[str, FakeServer]) -> None:
    fakes["openai"].app["faults"].delay = 1.5
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="slow-gpt", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"
    assert "0.5 s" in caught.value.message


def test_unreachable_upstream_is_503_naming_the_deployment() -> None:
    dead = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}
    server = Server(
        {
            "server": {"admin_key": ADMIN_KEY},
            "providers": {"dead": dead},
            "deployments": {"gone": {"model": "openai/gpt-4.1-mini", "backends": [{"provider": "dead"}]}},
        }
    ).start()
    try:
        status, answer = post(
            server, "/v1/chat/completions", b'{"model": "gone", "messages": [{"role": "user", "content": "x"}]}'
        )
        assert status == 503
        message = assert_openai_error(answer, "deployment_unavailable")["message"]
        assert "'gone'" in message and "unreachable" in message
    finally:
        server.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_disconnects_cancels_the_upstream_call(
    server: Server, fakes: dict[str, FakeServer], stream: bool
) -> None:
    record = fakes["openai"].app["record"]
    record.settled.clear()
    before = record.abandoned
    fakes["openai"].app["faults"].delay = 1.0
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}], stream=stream)
    assert record.settled.wait(10)
    assert record.abandoned == before + 1

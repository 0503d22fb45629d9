"""OpenAI's shapes for the embedded engine: request bodies -> worker parameters, results -> JSON and SSE."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from typing import Any

import orjson

from openfoundry.errors import InvalidRequest
from openfoundry.providers.base import Kind, Usage
from openfoundry.wire import sse

_SAMPLING = ("temperature", "top_p", "top_k", "seed", "frequency_penalty", "presence_penalty")


def generation_params(kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
    """What the worker needs to generate: the prompt (or messages) and the sampling settings."""
    if body.get("n") not in (None, 1):
        raise InvalidRequest("this engine generates one choice per call: 'n' must be 1", param="n")
    params: dict[str, Any] = {name: body[name] for name in _SAMPLING if body.get(name) is not None}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        if max_tokens < 1:
            raise InvalidRequest("'max_tokens' must be at least 1", param="max_tokens", code="invalid_value")
        params["max_tokens"] = max_tokens
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > 4:
            raise InvalidRequest("'stop' must be a string or an array of up to 4 strings", param="stop")
        params["stop"] = stops
    if kind == "chat":
        params["messages"] = [_message(index, m) for index, m in enumerate(body["messages"])]
    else:
        params["prompt"] = _prompt(body["prompt"])
    return params


def _message(index: int, message: dict[str, Any]) -> dict[str, str]:
    content = message.get("content")
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise InvalidRequest(
                    "this engine reads text only: content parts must be {'type': 'text', 'text': ...}",
                    param=f"messages[{index}].content",
                )
            texts.append(part["text"])
        content = "\n".join(texts)
    return {"role": message["role"], "content": content or ""}


def _prompt(prompt: Any) -> str:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if not isinstance(prompt, str):
        raise InvalidRequest("this engine takes one prompt string per call", param="prompt")
    return prompt


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    value = body["input"]
    texts = [value] if isinstance(value, str) else value
    if not all(isinstance(text, str) and text for text in texts):
        raise InvalidRequest("'input' must be a non-empty string or an array of them", param="input")
    return list(texts)


class Shaper:
    """One call's ids and timestamps, and its answer in OpenAI's shape (chat or text completion)."""

    def __init__(self, kind: Kind, model: str) -> None:
        self.kind = kind
        self.model = model
        self.created = int(time.time())
        prefix = "chatcmpl-" if kind == "chat" else "cmpl-"
        self.id = prefix + uuid.uuid4().hex
        self.object = "chat.completion.chunk" if kind == "chat" else "text_completion"

    def whole(self, text: str, finish: str, usage: Usage) -> bytes:
        choice: dict[str, Any]
        if self.kind == "chat":
            message = {"role": "assistant", "content": text, "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            kind = "text_completion"
        return orjson.dumps(
            {
                "id": self.id,
                "object": kind,
                "created": self.created,
                "model": self.model,
                "choices": [choice],
                "usage": usage_json(usage),
            }
        )

    def chunk(self, text: str | None, finish: str | None = None, *, first: bool = False) -> bytes:
        choice: dict[str, Any]
        if self.kind == "chat":
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if text is not None:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        return self._event([choice])

    def usage_chunk(self, usage: Usage) -> bytes:
        return self._event([], usage_json(usage))

    def _event(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            payload["usage"] = usage
        return sse.encode(orjson.dumps(payload))


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def embeddings_body(vectors: list[list[float]], model: str, tokens: int, encoding: Any) -> bytes:
    data = []
    for index, vector in enumerate(vectors):
        value: Any = vector
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": value})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage})

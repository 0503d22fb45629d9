"""Gemini SSE events (each a whole GenerateContentResponse) -> OpenAI chat.completion.chunk events."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson

from openfoundry.errors import FoundryError, UpstreamError
from openfoundry.providers.base import Usage
from openfoundry.providers.gemini.response import (
    empty_answer,
    finish_reason,
    new_call_id,
    openai_usage,
    tool_call,
    translate_error,
    usage_from,
)
from openfoundry.providers.http import malformed
from openfoundry.wire import sse


class StreamTranslator:
    """Feed Gemini stream events in order; get SSE bytes of OpenAI chunks back; `usage` fills as they come.

    Gemini has no closing event: call `end()` when the upstream closes. `done` turns true once [DONE]
    or an error event was written.
    """

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        include_usage: bool,
        created: int | None = None,
        call_id: Callable[[], str] = new_call_id,
    ) -> None:
        self.provider = provider
        self.include_usage = include_usage
        self.created = int(time.time()) if created is None else created
        self.call_id = call_id
        self.usage = Usage()
        self.done = False
        self._id: str | None = None
        self._model = model
        self._tools: dict[int, int] = {}
        """Candidate index -> tool calls sent so far (the next tool call index)."""
        self._finished: set[int] = set()

    def feed_data(self, data: bytes) -> list[bytes]:
        if self.done:
            return []
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(malformed(self.provider, "sent a malformed stream event"))
        return self.feed(payload) if isinstance(payload, dict) else []

    def feed(self, payload: dict[str, Any]) -> list[bytes]:
        if self.done:
            return []
        error = payload.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            status = code if isinstance(code, int) else 500
            return self._fail(translate_error(self.provider, status, orjson.dumps(payload), {}))
        if self._id is None:
            self._id = payload.get("responseId") or "chatcmpl-" + secrets.token_hex(12)
            self._model = payload.get("modelVersion") or self._model
        if isinstance(payload.get("usageMetadata"), dict):
            self.usage.update(usage_from(payload["usageMetadata"]))
        candidates = payload.get("candidates") or []
        if not candidates and (payload.get("promptFeedback") or {}).get("blockReason"):
            return self._fail(empty_answer(payload))
        out: list[bytes] = []
        for position, candidate in enumerate(candidates):
            out.extend(self._candidate(candidate.get("index", position), candidate))
        return out

    def end(self) -> list[bytes]:
        """What to send when the upstream closed: usage and [DONE], or an error if it stopped short."""
        if self.done:
            return []
        if not self._tools or set(self._tools) != self._finished:
            return self._fail(UpstreamError(f"provider {self.provider!r} ended the stream before a finishReason"))
        self.done = True
        out = []
        if self.include_usage:
            chunk = {**self._base(), "choices": [], "usage": openai_usage(self.usage)}
            out.append(sse.encode(orjson.dumps(chunk)))
        out.append(sse.DONE)
        return out

    def _candidate(self, index: int, candidate: dict[str, Any]) -> list[bytes]:
        out = []
        if index not in self._tools:
            self._tools[index] = 0
            out.append(self._chunk(index, {"role": "assistant", "content": ""}))
        for part in (candidate.get("content") or {}).get("parts") or []:
            if isinstance(part.get("functionCall"), dict):
                call = {"index": self._tools[index], **tool_call(part, self.call_id)}
                self._tools[index] += 1
                out.append(self._chunk(index, {"tool_calls": [call]}))
            elif isinstance(part.get("text"), str) and part["text"]:
                key = "reasoning_content" if part.get("thought") else "content"
                out.append(self._chunk(index, {key: part["text"]}))
        reason = candidate.get("finishReason")
        if reason and index not in self._finished:
            self._finished.add(index)
            out.append(self._chunk(index, {}, finish_reason(reason, called_tools=self._tools[index] > 0)))
        return out

    def _fail(self, error: FoundryError) -> list[bytes]:
        self.done = True
        return [sse.encode(error.openai_body())]

    def _base(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self.created, "model": self._model}

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**self._base(), "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
        return sse.encode(orjson.dumps(chunk))

"""Anthropic stream events -> OpenAI chat.completion.chunk events."""

from __future__ import annotations

import time
from typing import Any

import orjson

from openfoundry.errors import FoundryError, UpstreamError
from openfoundry.providers.anthropic.request import JSON_TOOL
from openfoundry.providers.anthropic.response import (
    ERROR_STATUS,
    finish_reason,
    openai_usage,
    translate_error,
    usage_from,
)
from openfoundry.providers.base import Usage
from openfoundry.providers.http import malformed
from openfoundry.wire import sse


class StreamTranslator:
    """Feed Anthropic stream events in order; get SSE bytes of OpenAI chunks back; `usage` fills as they come.

    `done` turns true after message_stop (then [DONE] was written) or an error event (then it was not).
    """

    def __init__(
        self, provider: str, *, include_usage: bool, json_tool: bool = False, created: int | None = None
    ) -> None:
        self.provider = provider
        self.include_usage = include_usage
        self.json_tool = json_tool
        self.created = int(time.time()) if created is None else created
        self.usage = Usage()
        self.done = False
        self._id: Any = None
        self._model: Any = None
        self._raw_usage: dict[str, Any] = {}
        self._tool_index: dict[Any, int] = {}
        """Anthropic block index -> OpenAI tool call index (tool calls count from 0)."""
        self._json_blocks: set[Any] = set()
        self._finished = False

    def feed_data(self, data: bytes) -> list[bytes]:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(malformed(self.provider, "sent a malformed stream event"))
        return self.feed(event) if isinstance(event, dict) else []

    def feed(self, event: dict[str, Any]) -> list[bytes]:
        match event.get("type"):
            case "message_start":
                message = event.get("message") or {}
                self._id, self._model = message.get("id"), message.get("model")
                self._note_usage(message.get("usage"))
                return [self._chunk({"role": "assistant", "content": ""})]
            case "content_block_start":
                return self._block_start(event.get("index"), event.get("content_block") or {})
            case "content_block_delta":
                return self._block_delta(event.get("index"), event.get("delta") or {})
            case "message_delta":
                return self._message_delta(event)
            case "message_stop":
                return self._stop()
            case "error":
                error = event.get("error") or {}
                status = ERROR_STATUS.get(str(error.get("type")), 500)
                return self._fail(translate_error(self.provider, status, orjson.dumps(event), {}))
            case _:
                return []  # ping, content_block_stop, and event types Anthropic may add

    def end(self) -> list[bytes]:
        """What to send when the upstream closed the stream: an error unless it ended properly."""
        if self.done:
            return []
        return self._fail(UpstreamError(f"provider {self.provider!r} ended the stream before message_stop"))

    def _block_start(self, index: Any, block: dict[str, Any]) -> list[bytes]:
        kind = block.get("type")
        if kind == "tool_use" and self.json_tool and block.get("name") == JSON_TOOL:
            self._json_blocks.add(index)
            return []
        if kind == "tool_use":
            number = self._tool_index[index] = len(self._tool_index)
            function = {"name": block.get("name"), "arguments": ""}
            call = {"index": number, "id": block.get("id"), "type": "function", "function": function}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        return []

    def _block_delta(self, index: Any, delta: dict[str, Any]) -> list[bytes]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        fragment = delta.get("partial_json") if kind == "input_json_delta" else None
        if not fragment:
            return []  # signature_delta, citations_delta, empty fragments
        if index in self._json_blocks:
            return [self._chunk({"content": fragment})]
        if index in self._tool_index:
            call = {"index": self._tool_index[index], "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, event: dict[str, Any]) -> list[bytes]:
        self._note_usage(event.get("usage"))
        stop_reason = (event.get("delta") or {}).get("stop_reason")
        if stop_reason is None or self._finished:
            return []
        self._finished = True
        return [self._chunk({}, finish_reason(stop_reason, called_tools=bool(self._tool_index)))]

    def _stop(self) -> list[bytes]:
        self.done = True
        out = []
        if self.include_usage:
            chunk = {**self._base(), "choices": [], "usage": openai_usage(self.usage)}
            out.append(sse.encode(orjson.dumps(chunk)))
        out.append(sse.DONE)
        return out

    def _fail(self, error: FoundryError) -> list[bytes]:
        self.done = True
        return [sse.encode(error.openai_body())]

    def _note_usage(self, raw: Any) -> None:
        """Anthropic's counts are cumulative: later reports replace the fields they carry."""
        if isinstance(raw, dict):
            self._raw_usage.update({key: value for key, value in raw.items() if value is not None})
            self.usage.update(usage_from(self._raw_usage))

    def _base(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self._model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**self._base(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return sse.encode(orjson.dumps(chunk))

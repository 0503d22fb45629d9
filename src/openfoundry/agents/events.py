"""The Responses stream: every event in order with its `sequence_number`, from `response.created` to
`response.completed` / `response.incomplete` / `response.failed` (no `[DONE]`).

The runner writes through an `Emitter` whether or not the client streams; without a sink (a whole
answer) nothing is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from openfoundry.agents.items import message_item, public
from openfoundry.wire import sse

Sink = Callable[[dict[str, Any]], None]
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_PHASES: dict[str, tuple[str, ...]] = {
    "mcp_call": ("response.mcp_call.in_progress",),
    "mcp_list_tools": ("response.mcp_list_tools.in_progress",),
    "file_search_call": ("response.file_search_call.in_progress", "response.file_search_call.searching"),
}
"""The progress events of server tool items, sent between their `output_item.added` and the end."""
_ENDS = {
    "mcp_call": ("response.mcp_call.completed", "response.mcp_call.failed"),
    "mcp_list_tools": ("response.mcp_list_tools.completed", "response.mcp_list_tools.failed"),
    "file_search_call": ("response.file_search_call.completed", "response.file_search_call.completed"),
}


def encode(event: dict[str, Any]) -> bytes:
    return sse.encode(orjson.dumps(event), event["type"])


class Emitter:
    def __init__(self, sink: Sink | None) -> None:
        self._sink = sink
        self._sequence = 0

    @property
    def live(self) -> bool:
        return self._sink is not None

    def emit(self, kind: str, **fields: Any) -> None:
        if self._sink is None:
            return
        self._sink({"type": kind, "sequence_number": self._sequence, **fields})
        self._sequence += 1

    def item(self, output_index: int, item: dict[str, Any]) -> None:
        """The events of a whole (non-message) output item: added, its progress, done."""
        if self._sink is None:
            return
        item = public(item)
        kind = item.get("type", "")
        started = {**item, "status": "in_progress"} if "status" in item else item
        if kind == "function_call":
            started = {**started, "arguments": ""}
        self.emit("response.output_item.added", output_index=output_index, item=started)
        where = {"item_id": item["id"], "output_index": output_index}
        if kind == "function_call":
            self.emit("response.function_call_arguments.delta", delta=item["arguments"], **where)
            self.emit("response.function_call_arguments.done", arguments=item["arguments"], **where)
        for phase in _PHASES.get(kind, ()):
            self.emit(phase, **where)
        if kind in _ENDS:
            failed = item.get("status") == "failed" or bool(item.get("error"))
            self.emit(_ENDS[kind][failed], **where)
        self.emit("response.output_item.done", output_index=output_index, item=item)


class MessageWriter:
    """An assistant message written as its text arrives; it exists once it has any text."""

    def __init__(self, emitter: Emitter, output_index: int, item_id: str) -> None:
        self._emitter = emitter
        self._where = {"item_id": item_id, "output_index": output_index}
        self._item_id = item_id
        self._text: list[str] = []

    @property
    def started(self) -> bool:
        return bool(self._text)

    def write(self, text: str) -> None:
        if not text:
            return
        if not self._text:
            self._start()
        self._text.append(text)
        self._emitter.emit("response.output_text.delta", content_index=0, delta=text, logprobs=[], **self._where)

    def finish(self, annotations: list[dict[str, Any]], status: str) -> dict[str, Any]:
        text = "".join(self._text)
        for index, annotation in enumerate(annotations):
            self._emitter.emit(
                "response.output_text.annotation.added",
                content_index=0,
                annotation_index=index,
                annotation=annotation,
                **self._where,
            )
        item = message_item(text, annotations, status, self._item_id)
        self._emitter.emit("response.output_text.done", content_index=0, text=text, logprobs=[], **self._where)
        self._emitter.emit("response.content_part.done", content_index=0, part=item["content"][0], **self._where)
        self._emitter.emit("response.output_item.done", output_index=self._where["output_index"], item=item)
        return item

    def _start(self) -> None:
        started = {**message_item("", [], "in_progress", self._item_id), "content": []}
        self._emitter.emit("response.output_item.added", output_index=self._where["output_index"], item=started)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        self._emitter.emit("response.content_part.added", content_index=0, part=part, **self._where)

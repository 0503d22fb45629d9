"""The one SSE codec: parse an upstream byte stream into events, and encode events for clients."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class Event:
    data: bytes
    event: str | None = None


def encode(data: bytes, event: str | None = None) -> bytes:
    """One SSE event; `data` must be a single line (JSON from orjson always is)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


class Decoder:
    """Incremental SSE parser: feed bytes as they arrive, get whole events back."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[Event] = []
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append(Event(b"\n".join(self._data), self._event))
                self._data = []
                self._event = None
            elif not line.startswith(b":"):
                self._field(line)
        self._buffer = buffer[start:]
        return events

    def _field(self, line: bytes) -> None:
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value.decode()

    def flush(self) -> list[Event]:
        """Events left when the stream ended without a final blank line."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        return events


async def events(chunks: AsyncIterable[bytes]) -> AsyncIterator[Event]:
    decoder = Decoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event


class Translator(Protocol):
    """Turns one upstream protocol's stream events into OpenAI chunks (see providers/*/stream.py)."""

    done: bool

    def feed_data(self, data: bytes) -> list[bytes]: ...

    def end(self) -> list[bytes]: ...


async def translate(upstream: AsyncGenerator[bytes, None], translator: Translator) -> AsyncGenerator[bytes, None]:
    """Decode an upstream SSE byte stream and hand each event to `translator`, until it is done."""
    decoder = Decoder()

    def feed(found: list[Event]) -> bytes:
        out: list[bytes] = []
        for event in found:
            if translator.done:
                break
            out.extend(translator.feed_data(event.data))
        return b"".join(out)

    try:
        async for chunk in upstream:
            out = feed(decoder.feed(chunk))
            if out:
                yield out
            if translator.done:
                return
        out = feed(decoder.flush()) + b"".join(translator.end())
        if out:
            yield out
    finally:
        await upstream.aclose()

"""A fast fake OpenAI-compatible upstream for the gateway benchmark: its own process, loopback only.

`POST .../chat/completions` answers at once, with no artificial delay:
- non-streaming: one small fixed `chat.completion` JSON with `usage`;
- streaming (`"stream": true`): SSE over chunked encoding: a role chunk, 20 content chunks, a finish chunk,
  a usage chunk when `stream_options.include_usage` is true, then `data: [DONE]`. Like OpenAI, every
  other chunk then carries `"usage":null` (`--no-usage-null` leaves that field out).
`GET /health` answers `ok`. Anything else is a 404.

Two implementations, picked with `--impl` (bench/README.md has the measured comparison):
- `raw` (default): an asyncio Protocol on uvloop with a hand-written HTTP/1.1 keep-alive parser and
  every answer prebuilt as bytes, so a request costs one parse, one regex search and one or two writes;
- `aiohttp`: aiohttp's low-level `web_server.Server` (no router, no middleware).

Usage: python bench/upstream.py --port 9000 [--impl raw|aiohttp] [--no-usage-null]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import socket
import sys
from typing import Any

try:
    import uvloop
except ImportError:  # the benchmark still runs, slower, on the default loop
    uvloop = None  # type: ignore[assignment]


def run(coro: Any) -> Any:
    """asyncio.run on uvloop when it is installed."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop is not None else None) as runner:
        return runner.run(coro)


MODEL = "bench"
CREATED = 1_700_000_000
WORDS = [f" w{i}" for i in range(20)]
USAGE = {"prompt_tokens": 12, "completion_tokens": len(WORDS), "total_tokens": 12 + len(WORDS)}

_STREAM = re.compile(rb'"stream"\s*:\s*true')
_INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":")).encode()


def completion_body() -> bytes:
    return _json(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(WORDS).strip(), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def stream_events(include_usage: bool, usage_null: bool) -> list[bytes]:
    """The SSE events of one streamed answer, each `data: ...\\n\\n`."""

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": "fp_bench",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage and usage_null:
            body["usage"] = None
        return body

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    chunks += [chunk({"content": word}, None) for word in WORDS]
    chunks.append(chunk({}, "stop"))
    if include_usage:
        final = chunk({}, None)
        final["choices"] = []
        final["usage"] = USAGE
        chunks.append(final)
    return [b"data: " + _json(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


def chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)


class Answers:
    """Every answer prebuilt as the exact bytes to write."""

    def __init__(self, usage_null: bool) -> None:
        body = completion_body()
        self.completion = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        head += b"transfer-encoding: chunked\r\n\r\n"
        # (first write, second write): the role chunk and the first content chunk go out first, the rest
        # one loop turn later, so time to first token and total time are not always the same instant.
        self.stream: dict[bool, tuple[bytes, bytes]] = {}
        for include_usage in (False, True):
            events = stream_events(include_usage, usage_null)
            self.stream[include_usage] = (head + chunked(events[:2]), chunked(events[2:]) + b"0\r\n\r\n")
        self.health = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
        missing = b'{"error":{"message":"not found","type":"invalid_request_error","code":"not_found"}}'
        self.not_found = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
            len(missing),
            missing,
        )


def _chunked_body(buf: bytes, start: int) -> tuple[bytes, int] | None:
    """(body, end) of a chunked body starting at `start`, or None while incomplete."""
    parts: list[bytes] = []
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # no trailers expected: the last CRLF ends the body
            return (b"".join(parts), end + 4) if end >= 0 else None
        if len(buf) < eol + 2 + size + 2:
            return None
        parts.append(buf[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2


class RawUpstream(asyncio.Protocol):
    """One keep-alive connection; pipelined requests are answered in order."""

    answers: Answers
    transport: asyncio.Transport
    buf: bytes

    __slots__ = ("buf", "transport")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        self.buf = b""
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                eol = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : eol if eol >= 0 else len(head)])
                if len(buf) < end + 4 + length:
                    break
                body = buf[end + 4 : end + 4 + length]
                buf = buf[end + 4 + length :]
            elif b"\r\ntransfer-encoding: chunked" in head:
                parsed = _chunked_body(buf, end + 4)
                if parsed is None:
                    break
                body, stop = parsed
                buf = buf[stop:]
            else:
                body = b""
                buf = buf[end + 4 :]
            self.answer(head, body)
            if b"\r\nconnection: close" in head:
                self.transport.close()
                break
        self.buf = buf

    def answer(self, head: bytes, body: bytes) -> None:
        line = head[: head.find(b"\r\n")]
        method, _, rest = line.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        answers = self.answers
        if method == b"post" and path.endswith(b"/chat/completions"):
            if _STREAM.search(body):
                first, rest_of_stream = answers.stream[_INCLUDE_USAGE.search(body) is not None]
                self.transport.write(first)
                asyncio.get_running_loop().call_soon(self._write, rest_of_stream)
            else:
                self.transport.write(answers.completion)
        elif path == b"/health":
            self.transport.write(answers.health)
        else:
            self.transport.write(answers.not_found)

    def _write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)


async def serve_raw(port: int, answers: Answers) -> asyncio.AbstractServer:
    RawUpstream.answers = answers
    loop = asyncio.get_running_loop()
    return await loop.create_server(RawUpstream, "127.0.0.1", port, backlog=4096, reuse_address=True)


async def serve_aiohttp(port: int, answers: Answers, usage_null: bool) -> asyncio.AbstractServer:
    from aiohttp import web, web_server

    body = completion_body()
    events = {flag: stream_events(flag, usage_null) for flag in (False, True)}

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "POST" and request.path.endswith("/chat/completions"):
            data = await request.read()
            if not _STREAM.search(data):
                return web.Response(body=body, content_type="application/json")
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            parts = events[_INCLUDE_USAGE.search(data) is not None]
            await response.write(b"".join(parts[:2]))
            await response.write(b"".join(parts[2:]))
            await response.write_eof()
            return response
        if request.path == "/health":
            return web.Response(text="ok")
        missing = answers.not_found.split(b"\r\n\r\n", 1)[1]
        return web.Response(status=404, body=missing, content_type="application/json")

    loop = asyncio.get_running_loop()
    return await loop.create_server(
        web_server.Server(handler, access_log=None), "127.0.0.1", port, backlog=4096, reuse_address=True
    )


async def main(port: int, impl: str, usage_null: bool) -> None:
    answers = Answers(usage_null)
    if impl == "raw":
        server = await serve_raw(port, answers)
    else:
        server = await serve_aiohttp(port, answers, usage_null)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"upstream ({impl}) on http://127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--impl", choices=("raw", "aiohttp"), default="raw")
    parser.add_argument("--no-usage-null", action="store_true", help="leave `usage: null` out of stream chunks")
    args = parser.parse_args(argv)
    try:
        run(main(args.port, args.impl, not args.no_usage_null))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    cli()

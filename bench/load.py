"""Load generator for the gateway benchmark: its own process, loopback only.

N keep-alive HTTP/1.1 connections each send the same prebuilt `POST /v1/chat/completions` request
back to back (closed loop) for a warm-up, then for a measured duration (or a request count). Per
request it measures latency (request written -> whole answer read) and, when streaming, time to
first token (-> the first SSE chunk whose delta has non-empty `content`). It prints one JSON object:
requests/s over the measured window, latency and TTFT percentiles in ms, error counts.

The client is an asyncio Protocol on uvloop with a hand-written response parser (Content-Length and
chunked), the fastest of those measured (bench/README.md), so that it is not the bottleneck.

Usage: python bench/load.py --url http://127.0.0.1:8080/v1/chat/completions -c 64 --duration 5 [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:
    uvloop = None  # type: ignore[assignment]

_CONTENT = re.compile(rb'"content"\s*:\s*"[^"]')
_NS = 1e-6  # ns -> ms


def build_request(url: str, key: str | None, model: str, stream: bool, max_tokens: int) -> bytes:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"load.py only targets loopback; got {parts.hostname!r}")
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello in twenty words."}],
        "max_tokens": max_tokens,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    data = json.dumps(body, separators=(",", ":")).encode()
    head = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        "Accept: application/json" if not stream else "Accept: text/event-stream",
        f"Content-Length: {len(data)}",
    ]
    if key:
        head.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[tuple[int, int, bool]] | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self._reset()

    def _reset(self) -> None:
        self.buf = b""
        self.head_end = -1
        self.status = 0
        self.length = -1  # Content-Length, or -1 for chunked / until close
        self.chunked = False
        self.pos = 0  # chunked: where the next size line starts
        self.ttft = 0
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection closed mid-answer"))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, int, bool]]:
        assert self.transport is not None
        self._reset()
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.done

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        if self.stream and not self.ttft and _CONTENT.search(data):
            self.ttft = now
        buf = self.buf = self.buf + data if self.buf else data
        if self.head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head_end = end + 4
            self.pos = end + 4
            head = buf[:end].lower()
            self.status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                eol = head.find(b"\r\n", at + 2)
                self.length = int(head[at + 17 : eol if eol >= 0 else len(head)])
            elif b"\r\ntransfer-encoding: chunked" in head:
                self.chunked = True
            self.close_after = b"\r\nconnection: close" in head
        if self.chunked:
            pos = self.pos
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol].split(b";", 1)[0], 16)
                if size == 0:
                    if buf.find(b"\r\n\r\n", eol) >= 0:
                        self._finish(now)
                        return
                    break
                if len(buf) < eol + 4 + size:
                    break
                pos = eol + 4 + size
            self.pos = pos
        elif self.length >= 0 and len(buf) >= self.head_end + self.length:
            self._finish(now)

    def eof_received(self) -> bool | None:
        if self.length < 0 and not self.chunked and self.head_end >= 0:
            self._finish(time.perf_counter_ns())
        return None

    def _finish(self, now: int) -> None:
        ok = 200 <= self.status < 300
        if ok and self.stream:
            ok = b"[DONE]" in self.buf
        if self.done is not None and not self.done.done():
            self.done.set_result((now, self.ttft, ok))
        if self.close_after and self.transport is not None:
            self.transport.close()


class Recorder:
    def __init__(self) -> None:
        self.latency: list[int] = []
        self.ttft: list[int] = []
        self.completed = 0
        self.errors = 0
        self.error_kinds: dict[str, int] = {}

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def worker(
    host: str,
    port: int,
    request: bytes,
    stream: bool,
    window: tuple[int, int],
    limit: list[int],
    record: Recorder,
    patience: float,
) -> None:
    loop = asyncio.get_running_loop()
    start, stop = window
    conn: Connection | None = None
    while True:
        if conn is None or conn.transport is None or conn.transport.is_closing():
            try:
                _, conn = await loop.create_connection(lambda: Connection(stream), host, port)
            except OSError as exc:
                record.error(type(exc).__name__)
                await asyncio.sleep(0.05)
                if time.perf_counter_ns() >= stop:
                    return
                continue
        sent = time.perf_counter_ns()
        if sent >= stop or limit[0] <= 0:
            break
        limit[0] -= 1
        try:
            ended, first, ok = await asyncio.wait_for(conn.send(request), patience)
        except (ConnectionError, TimeoutError) as exc:
            record.error(type(exc).__name__)
            conn.transport.close()  # type: ignore[union-attr]
            continue
        if not ok:
            if sent >= start:
                record.error(f"status {conn.status}")
            continue
        if start <= ended <= stop:  # requests/s: answers completed inside the window, whenever sent
            record.completed += 1
        if sent < start:  # warm-up
            continue
        record.latency.append(ended - sent)
        if stream and first:
            record.ttft.append(first - sent)
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def aiohttp_worker(
    session: Any,
    url: str,
    body: bytes,
    headers: dict[str, str],
    stream: bool,
    window: tuple[int, int],
    limit: list[int],
    record: Recorder,
) -> None:
    """The same closed loop with aiohttp's client (`--client aiohttp`), to compare against the raw one."""
    start, stop = window
    while True:
        sent = time.perf_counter_ns()
        if sent >= stop or limit[0] <= 0:
            return
        limit[0] -= 1
        first = 0
        try:
            async with session.post(url, data=body, headers=headers) as answer:
                if stream:
                    data = b""
                    async for chunk in answer.content.iter_any():
                        if not first and _CONTENT.search(chunk):
                            first = time.perf_counter_ns()
                        data += chunk
                    ok = answer.status == 200 and b"[DONE]" in data
                else:
                    await answer.read()
                    ok = answer.status == 200
        except Exception as exc:
            record.error(type(exc).__name__)
            continue
        ended = time.perf_counter_ns()
        if not ok:
            if sent >= start:
                record.error(f"status {answer.status}")
            continue
        if start <= ended <= stop:
            record.completed += 1
        if sent < start:
            continue
        record.latency.append(ended - sent)
        if stream and first:
            record.ttft.append(first - sent)


def percentiles(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] * _NS, 4)

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "min": round(ordered[0] * _NS, 4),
        "max": round(ordered[-1] * _NS, 4),
        "mean": round(sum(ordered) / n * _NS, 4),
        "n": n,
    }


async def run_load(args: argparse.Namespace) -> dict[str, Any]:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = build_request(args.url, args.key, args.model, args.stream, args.max_tokens)
    now = time.perf_counter_ns()
    start = now + int(args.warmup * 1e9)
    stop = start + int(args.duration * 1e9)
    limit = [args.requests if args.requests else 1 << 62]
    record = Recorder()
    if args.client == "raw":
        await asyncio.gather(
            *(
                worker(host, port, request, args.stream, (start, stop), limit, record, args.timeout)
                for _ in range(args.concurrency)
            )
        )
    else:
        import aiohttp

        head, _, body = request.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        headers = {k: v for k, v in headers.items() if k not in ("Host", "Content-Length")}
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        timeout = aiohttp.ClientTimeout(total=args.timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(
                *(
                    aiohttp_worker(session, args.url, body, headers, args.stream, (start, stop), limit, record)
                    for _ in range(args.concurrency)
                )
            )
    finished = time.perf_counter_ns()
    window = (min(finished, stop) - start) / 1e9
    return {
        "url": args.url,
        "stream": args.stream,
        "concurrency": args.concurrency,
        "client": args.client,
        "duration_s": round(window, 3),
        "requests": record.completed,
        "rps": round(record.completed / window, 1) if window > 0 else 0.0,
        "errors": record.errors,
        "error_kinds": record.error_kinds,
        "latency_ms": percentiles(record.latency),
        "ttft_ms": percentiles(record.ttft) if args.stream else None,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/v1/chat/completions")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured requests first")
    parser.add_argument("--requests", type=int, default=0, help="stop after this many requests (0: no limit)")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--key", default=None, help="sent as Authorization: Bearer KEY")
    parser.add_argument("--model", default="bench")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw", help="raw: the fast one (default)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before one request counts as failed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    factory = uvloop.new_event_loop if uvloop is not None else None
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(run_load(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

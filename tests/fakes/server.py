"""Run a fake upstream (an aiohttp app) on a loopback port in a background thread."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Faults:
    """Switches a test flips to make the fake misbehave."""

    delay: float = 0.0
    """Seconds to wait before answering."""
    errors: list[tuple[int, bytes]] = field(default_factory=list)
    """(status, body) answers to give, first to last, before behaving again."""
    retry_after: str | None = None
    """A Retry-After header for those error answers."""
    failure_rate: float = 0.0
    """Share of calls (chosen by a seeded random) that fail the way `failure` says."""
    failure: str = "500"
    """How a call fails: "500", "503", "429", "reset", "truncated" or "malformed"."""
    cut_after: int | None = None
    """Streams stop (connection dropped) after this many events."""
    drip: float = 0.0
    """Seconds between streamed events (a slow-drip stream)."""
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def next_error(self) -> tuple[int, bytes] | None:
        return self.errors.pop(0) if self.errors else None

    def failing(self) -> bool:
        return self.failure_rate > 0 and self.rng.random() < self.failure_rate


async def send_event(request: web.Request, response: web.StreamResponse, data: bytes, sent: list[int]) -> None:
    """Write one SSE event, applying the stream faults (`drip`, `cut_after`)."""
    faults: Faults = request.app["faults"]
    if faults.cut_after is not None and sent[0] >= faults.cut_after:
        assert request.transport is not None
        request.transport.abort()
        raise ConnectionResetError("fake cut the stream")
    if faults.drip and sent[0]:
        await asyncio.sleep(faults.drip)
    await response.write(b"data: " + data + b"\n\n")
    sent[0] += 1


async def _fail(request: web.Request, kind: str, retry_after: str | None) -> web.StreamResponse:
    if kind == "reset":
        assert request.transport is not None
        request.transport.abort()
        raise ConnectionResetError("fake reset the connection")
    if kind == "truncated":
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "400"})
        await response.prepare(request)
        await response.write(b'{"id": "chatcmpl-cut", "object": "chat.completion", "choices": [')
        assert request.transport is not None
        request.transport.abort()
        raise ConnectionResetError("fake truncated the body")
    if kind == "malformed":
        return web.Response(status=200, body=b'{"id": "chatcmpl-bad", "choices": [{', content_type="application/json")
    status = int(kind)
    body = b'{"error": {"message": "fake failure", "type": "server_error", "param": null, "code": null}}'
    return web.Response(
        status=status,
        body=body,
        content_type="application/json",
        headers={"Retry-After": retry_after} if retry_after else None,
    )


@dataclass
class Record:
    """What the fake saw: the last request's path, query, headers and body."""

    path: str = ""
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    count: int = 0
    abandoned: int = 0
    """Delayed requests whose client had gone by the time the delay was over."""
    settled: threading.Event = field(default_factory=threading.Event)
    """Set each time a delayed request finishes waiting."""


class FakeServer:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def new_app() -> web.Application:
    """An aiohttp app with the shared `faults` and `record` state every fake uses."""
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_observe])
    app["faults"] = Faults()
    app["record"] = Record()
    return app


@web.middleware
async def _observe(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    record: Record = request.app["record"]
    record.path = request.path
    record.query = dict(request.query)
    record.headers = dict(request.headers)
    record.body = await request.read()
    record.count += 1
    faults: Faults = request.app["faults"]
    if faults.delay:
        await asyncio.sleep(faults.delay)
        if request.transport is None or request.transport.is_closing():
            record.abandoned += 1
        record.settled.set()
    if faults.failing():
        return await _fail(request, faults.failure, faults.retry_after)
    error = faults.next_error()
    if error is not None:
        headers = {"Retry-After": faults.retry_after} if faults.retry_after else None
        return web.Response(status=error[0], body=error[1], content_type="application/json", headers=headers)
    return await handler(request)

"""The embedded llama.cpp engine (provider type `llamacpp`): one GGUF model in worker processes.

`replicas` worker processes each hold the model and run `max_concurrency` calls at once; the event loop
only moves messages. A call takes a slot from the scheduler (bounded, fair queue; 429 when full), then
goes to the least busy ready replica. A replica that dies is restarted with backoff; its calls that had
sent nothing yet run again on another replica, a stream already under way ends with an error event.
Loading happens in the background: `start()` returns at once, calls wait for the first ready replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

from openfoundry.config import EngineSettings, ProviderSettings
from openfoundry.engines.models import model_file
from openfoundry.engines.replica import Replica
from openfoundry.engines.scheduler import Scheduler
from openfoundry.engines.wire import Shaper, embedding_inputs, embeddings_body, generation_params
from openfoundry.engines.worker import WorkerOptions
from openfoundry.errors import FoundryError, InvalidRequest, Unavailable, UpstreamUnavailable
from openfoundry.providers.base import Call, Reply, Stream, Usage

log = logging.getLogger("openfoundry.engines")
LOAD_WAIT = 300.0
"""Longest a call waits for a replica to come up (first start assembles and loads the model)."""
FAILOVERS = 2
RATE_WINDOW = 60.0


class LlamaCppEngine:
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.type = settings.type
        self.settings = settings
        self.engine: EngineSettings = settings.engine or EngineSettings()
        self.model_path: str | None = None
        self.replicas: list[Replica] = []
        self.error: str | None = None
        total = self.engine.replicas * self.engine.max_concurrency
        self.scheduler = Scheduler(name, total, self.engine.max_queue, self.engine.queue_timeout)
        self.calls = 0
        self.tokens = 0
        self._recent: deque[tuple[float, int, float]] = deque()
        """(finished at, completion tokens, decode seconds) of recent generations."""
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: asyncio.Task[None] | None = None

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"engine-{self.name}")

    async def close(self) -> None:
        self._closing = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await asyncio.gather(*(replica.stop() for replica in self.replicas))

    async def _run(self) -> None:
        try:
            path = await asyncio.to_thread(model_file, self.settings)
        except Exception as exc:
            self.error = f"model file: {exc}"
            log.error("engine %s: %s", self.name, self.error)
            self._notify()
            return
        self.model_path = str(path)
        # One thread per two cores: llama.cpp's threads spin, and on a busy or hyperthreaded machine
        # more threads made decoding ten times slower here, not faster.
        threads = self.engine.n_threads or max(1, (os.cpu_count() or 2) // 2 // self.engine.replicas)
        options = WorkerOptions(str(path), self.engine.n_ctx, threads, self.engine.n_batch, self.engine.max_concurrency)
        self.replicas = [Replica(self.name, index, options) for index in range(self.engine.replicas)]
        await asyncio.gather(*(self._keep(replica) for replica in self.replicas))

    async def _keep(self, replica: Replica) -> None:
        """Run one replica for the engine's life: start it, and restart it with backoff when it dies."""
        backoff = 1.0
        while not self._closing:
            replica.start()
            await replica.settled.wait()
            self._notify()
            if replica.state == "ready":
                log.info("engine %s replica %d ready (pid %s)", self.name, replica.index, replica.process.pid)  # type: ignore[union-attr]
                backoff = 1.0
            elif replica.load_failed:
                return  # the worker could not load the model: starting it again would fail the same way
            await replica.exited.wait()
            self._notify()
            if self._closing:
                return
            log.warning(
                "engine %s replica %d: %s; restarting in %.0f s", self.name, replica.index, replica.error, backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            replica.restarts += 1

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def state(self) -> str:
        if any(replica.state == "ready" for replica in self.replicas):
            return "ready"
        if self.error or (self.replicas and all(replica.load_failed for replica in self.replicas)):
            return "failed"
        return "loading"

    async def _replica(self) -> Replica:
        """The least busy ready replica, waiting for one while the engine loads or restarts."""
        deadline = time.monotonic() + LOAD_WAIT
        while True:
            ready = [replica for replica in self.replicas if replica.state == "ready"]
            if ready:
                return min(ready, key=lambda replica: replica.load)
            if self.state == "failed":
                reason = self.error or "; ".join(r.error or "" for r in self.replicas)
                raise Unavailable(f"engine {self.name!r} failed to load its model: {reason}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Unavailable(f"engine {self.name!r} is still loading its model", headers={"Retry-After": "5"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # -- calls ------------------------------------------------------------------------------------

    async def _exchange(self, op: str, params: dict[str, Any], caller: str) -> AsyncGenerator[tuple[Any, ...], None]:
        """The worker's messages for one call, holding a scheduler slot throughout; fails over while
        nothing has come back yet."""
        granted = await self.scheduler.acquire(caller)
        try:
            for attempt in itertools.count():
                replica = await self._replica()
                call_id = next(self._ids)
                inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
                replica.calls[call_id] = inbox
                finished = False
                try:
                    if not replica.send(("run", call_id, op, params)):
                        message: tuple[Any, ...] = (None, "died", "worker pipe closed")
                    else:
                        message = await inbox.get()
                    answered = False
                    while message[1] != "died":
                        answered = answered or message[1] == "text"
                        finished = message[1] in ("done", "error", "embeddings")
                        yield message
                        if finished:
                            return
                        message = await inbox.get()
                    finished = True
                    if answered or attempt >= FAILOVERS:
                        raise UpstreamUnavailable(f"engine {self.name!r} lost a worker mid-call: {message[2]}")
                    log.warning("engine %s: replica %d died; the call runs again", self.name, replica.index)
                finally:
                    replica.calls.pop(call_id, None)
                    if not finished:
                        replica.send(("cancel", call_id))
        finally:
            self.scheduler.release(granted)

    def _raise(self, message: tuple[Any, ...], param: str | None) -> None:
        if message[1] != "error":
            return
        _, _, code, text = message
        if code == "context_length_exceeded":
            raise InvalidRequest(text, code=code, param=param)
        raise FoundryError(f"engine {self.name!r}: {text}", status=500, code=code)

    def _finished(self, completion: int, started: float | None) -> None:
        now = time.monotonic()
        self.calls += 1
        self.tokens += completion
        if started is not None and completion > 1:
            self._recent.append((now, completion - 1, now - started))
        while self._recent and self._recent[0][0] < now - RATE_WINDOW:
            self._recent.popleft()

    def tokens_per_second(self) -> float | None:
        """Decode speed over the generations of the last minute (first token excluded)."""
        now = time.monotonic()
        recent = [(tokens, seconds) for at, tokens, seconds in self._recent if at >= now - RATE_WINDOW]
        seconds = sum(s for _, s in recent)
        return sum(t for t, _ in recent) / seconds if seconds > 0 else None

    async def complete(self, call: Call) -> Reply:
        model = call.upstream_model
        if call.kind == "embeddings":
            return await self._embed(call, model)
        shaper = Shaper(call.kind, model)
        params = generation_params(call.kind, call.body)
        usage, pieces, finish, first = Usage(), [], "stop", None
        async with contextlib.aclosing(self._exchange("generate", params, call.caller)) as messages:
            async for message in messages:
                self._raise(message, _param(call))
                if message[1] == "start":
                    usage.prompt_tokens = message[2]
                elif message[1] == "text":
                    first = first or time.monotonic()
                    pieces.append(message[2])
                elif message[1] == "done":
                    finish, usage.completion_tokens = message[2], message[4]
        self._finished(usage.completion_tokens, first)
        return Reply(shaper.whole("".join(pieces), finish, usage), usage)

    async def _embed(self, call: Call, model: str) -> Reply:
        texts = embedding_inputs(call.body)
        async with contextlib.aclosing(self._exchange("embed", {"input": texts}, call.caller)) as messages:
            async for message in messages:
                self._raise(message, "input")
                if message[1] == "embeddings":
                    usage = Usage(prompt_tokens=message[3])
                    body = embeddings_body(message[2], model, message[3], call.body.get("encoding_format"))
                    return Reply(body, usage)
        raise UpstreamUnavailable(f"engine {self.name!r} ended an embeddings call without an answer")

    async def stream(self, call: Call) -> Stream:
        if call.kind == "embeddings":
            raise InvalidRequest("embeddings cannot be streamed", param="stream")
        params = generation_params(call.kind, call.body)
        messages = self._exchange("generate", params, call.caller)
        try:
            first = await anext(messages)  # queueing, loading and a prompt too long all fail here
            self._raise(first, _param(call))
        except BaseException:
            await messages.aclose()
            raise
        usage = Usage(prompt_tokens=first[2])
        shaper = Shaper(call.kind, call.upstream_model)
        return Stream(self._events(messages, shaper, usage, call.include_usage), usage)

    async def _events(
        self, messages: AsyncGenerator[tuple[Any, ...], None], shaper: Shaper, usage: Usage, include_usage: bool
    ) -> AsyncGenerator[bytes, None]:
        first: float | None = None
        try:
            if shaper.kind == "chat":
                yield shaper.chunk(None, first=True)
            async for message in messages:
                if message[1] == "text":
                    first = first or time.monotonic()
                    usage.completion_tokens = message[3]
                    yield shaper.chunk(message[2])
                elif message[1] == "done":
                    usage.completion_tokens = message[4]
                    self._finished(usage.completion_tokens, first)
                    ending = shaper.chunk(None, message[2])
                    if include_usage:
                        ending += shaper.usage_chunk(usage)
                    yield ending + b"data: [DONE]\n\n"
                elif message[1] == "error":
                    raise FoundryError(f"engine {self.name!r}: {message[3]}", status=500, code=message[2])
        finally:
            await messages.aclose()

    def status(self) -> dict[str, Any]:
        """What GET /admin/engines and /metrics show."""
        rate = self.tokens_per_second()
        return {
            "provider": self.name,
            "type": self.type,
            "model_path": self.model_path,
            "state": self.state,
            "error": self.error,
            "replicas": [
                {
                    "index": r.index,
                    "state": r.state,
                    "pid": r.process.pid if r.process is not None else None,
                    "restarts": r.restarts,
                    "in_flight": r.load,
                    "error": r.error,
                }
                for r in self.replicas
            ],
            "replicas_wanted": self.engine.replicas,
            "replicas_ready": sum(r.state == "ready" for r in self.replicas),
            "slots": self.scheduler.slots,
            "running": self.scheduler.running,
            "queue_depth": self.scheduler.queued,
            "max_queue": self.scheduler.max_queue,
            "rejected": self.scheduler.rejected,
            "calls": self.calls,
            "completion_tokens": self.tokens,
            "tokens_per_second": None if rate is None else round(rate, 2),
        }


def _param(call: Call) -> str:
    return "messages" if call.kind == "chat" else "prompt"

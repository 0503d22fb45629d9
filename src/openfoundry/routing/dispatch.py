"""One call to a deployment: attempts over its backends with retries, backoff, breakers and hedging.

Retried: transport failures, timeouts and upstream 408/429/5xx/529 (honouring Retry-After), with
exponential backoff and full jitter between attempts on the same backend, within a total deadline.
Never retried: any other 4xx. A stream counts as served once its first chunk is in hand, so it fails
over only before a byte reaches the client.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openfoundry.deployments import Backend, Deployment
from openfoundry.errors import FoundryError, Unavailable, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from openfoundry.providers.base import Call, Kind, Provider, Reply, Stream
from openfoundry.routing.router import BackendState, Router

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})


def retryable(exc: FoundryError) -> bool:
    if isinstance(exc, UpstreamUnavailable | UpstreamTimeout):
        return True
    return isinstance(exc, UpstreamError) and exc.upstream_status in RETRY_STATUSES


def _retry_after(exc: FoundryError) -> float | None:
    value = exc.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


@dataclass(slots=True)
class Served:
    """A call one backend took on: the whole reply, or a stream whose first chunk already arrived."""

    backend: Backend
    reply: Reply | None = None
    stream: Stream | None = None
    upstream_seconds: float = 0.0


class Dispatcher:
    def __init__(
        self,
        router: Router,
        providers: Mapping[str, Provider],
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.router = router
        self.providers = providers
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._closing: set[asyncio.Future[None]] = set()

    async def dispatch(
        self, deployment: Deployment, kind: Kind, body: dict[str, Any], raw: bytes, stream: bool, caller: str = ""
    ) -> Served:
        policy = deployment.settings.retry
        deadline = time.monotonic() + policy.deadline
        plan = self.router.order(deployment)
        tried: dict[int, int] = {}
        failures: list[FoundryError] = []
        hedge = deployment.settings.hedge_after if len(plan) > 1 else None
        for attempt in range(policy.attempts):
            state = self._next(plan, attempt)
            if state is None:
                break
            wait = self._wait_before(state, tried.get(id(state), 0), policy.backoff, policy.backoff_max)
            if time.monotonic() + wait > deadline:
                break
            if wait:
                await self._sleep(wait)
            tried[id(state)] = tried.get(id(state), 0) + 1
            call = Call(kind, body, raw, state.backend.upstream_model, stream, caller)
            try:
                if attempt == 0 and hedge is not None:
                    return await self._hedged(plan, state, call, hedge)
                return await self._attempt(state, call)
            except FoundryError as exc:
                if not retryable(exc):
                    raise
                failures.append(exc)
                pause = _retry_after(exc)
                if pause is not None:
                    state.resting_until = time.monotonic() + pause
        raise self._unavailable(deployment, failures)

    def _next(self, plan: list[BackendState], attempt: int) -> BackendState | None:
        """The backend for this attempt: the plan in turn, skipping breakers that admit nothing."""
        for offset in range(len(plan)):
            state = plan[(attempt + offset) % len(plan)]
            if state.breaker.allow():
                return state
        return None

    def _wait_before(self, state: BackendState, tries: int, base: float, cap: float) -> float:
        resting = max(0.0, state.resting_until - time.monotonic())
        backoff = self._rng.uniform(0, min(cap, base * 2 ** (tries - 1))) if tries else 0.0
        return max(resting, backoff)

    async def _attempt(self, state: BackendState, call: Call) -> Served:
        provider = self.providers[state.backend.provider]
        state.inflight += 1
        state.calls += 1
        started = time.monotonic()
        try:
            if call.stream:
                opened = await provider.stream(call)
                first = await _first_chunk(opened)
                served = Served(state.backend, stream=Stream(_Resumed(opened, first, state), opened.usage))
            else:
                served = Served(state.backend, reply=await provider.complete(call))
        except FoundryError as exc:
            state.inflight -= 1
            (state.breaker.failure if retryable(exc) else state.breaker.success)()
            raise
        except BaseException:
            state.inflight -= 1
            raise
        served.upstream_seconds = time.monotonic() - started
        state.observe(served.upstream_seconds)
        state.breaker.success()
        if not call.stream:
            state.inflight -= 1
        return served

    async def _hedged(self, plan: list[BackendState], first: BackendState, call: Call, after: float) -> Served:
        """Ask `first`; if it has not answered after `after` seconds, ask another too; the first answer wins."""
        leader = asyncio.ensure_future(self._attempt(first, call))
        done, _ = await asyncio.wait({leader}, timeout=after)
        second = next((s for s in plan if s is not first and s.breaker.allow()), None)
        if done or second is None:
            return await leader
        second_call = Call(call.kind, call.body, call.raw, second.backend.upstream_model, call.stream, call.caller)
        follower = asyncio.ensure_future(self._attempt(second, second_call))
        racing = {leader, follower}
        try:
            while racing:
                done, racing = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is None:
                        return task.result()
            return await leader
        finally:
            for task in racing:
                task.cancel()
                task.add_done_callback(self._close_unused)

    def _close_unused(self, task: asyncio.Future[Served]) -> None:
        """A hedge that lost but had already opened a stream: release it."""
        if task.cancelled() or task.exception() is not None:
            return
        stream = task.result().stream
        if stream is not None:
            closing = asyncio.ensure_future(stream.chunks.aclose())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    def _unavailable(self, deployment: Deployment, failures: list[FoundryError]) -> FoundryError:
        statuses = {failure.status for failure in failures}
        if statuses in ({429}, {504}):  # all rate limited, or all timed out: say so, not just "unavailable"
            return failures[-1]
        reason = failures[-1].message if failures else "every backend's circuit breaker is open"
        return Unavailable(f"deployment {deployment.name!r} is unavailable: {reason}")


async def _first_chunk(stream: Stream) -> bytes:
    try:
        return await anext(stream.chunks)
    except StopAsyncIteration:
        return b""
    except BaseException:
        await stream.chunks.aclose()
        raise


class _Resumed:
    """A stream after its first chunk: gives that chunk again, then the rest; frees the backend once."""

    __slots__ = ("_closed", "_first", "_state", "_stream")

    def __init__(self, stream: Stream, first: bytes, state: BackendState) -> None:
        self._stream = stream
        self._first: bytes | None = first or None
        self._state = state
        self._closed = False

    def __aiter__(self) -> _Resumed:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        try:
            return await anext(self._stream.chunks)
        except StopAsyncIteration:
            await self.aclose()
            raise
        except FoundryError:
            self._state.breaker.failure()
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._state.inflight -= 1
            await self._stream.chunks.aclose()

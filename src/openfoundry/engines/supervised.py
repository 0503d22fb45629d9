"""Supervised GPU inference servers (provider types `vllm` and `sglang`).

The gateway starts `vllm serve MODEL ...` or `python -m sglang.launch_server --model-path MODEL ...` as a
child process in its own process group, waits until it answers GET /v1/models, and then routes to it as
an OpenAI-compatible upstream on loopback (calls are renamed to the name it serves). A child that exits
is restarted with exponential backoff (1 s doubling to 60 s, reset after it has been ready); at shutdown
the whole group gets SIGTERM, then SIGKILL after `stop_timeout`. Until it is ready, calls fail fast with
a retryable 502, so a deployment's other backends take them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

import aiohttp

from openfoundry.config import LaunchSettings, ProviderSettings
from openfoundry.errors import UpstreamUnavailable
from openfoundry.providers.base import Call, Reply, Stream
from openfoundry.providers.openai_compat import OpenAICompatible

log = logging.getLogger("openfoundry.engines")
PROBE_INTERVAL = 0.5
BACKOFF_MAX = 60.0


def command_line(kind: str, launch: LaunchSettings, port: int) -> list[str]:
    """The child's argv: the serving recipe of `kind` with the configured arguments."""
    name = launch.served_model_name or launch.model
    common = ["--host", launch.host, "--port", str(port), "--served-model-name", name]
    if kind == "vllm":
        program = launch.command or ["vllm", "serve"]
        args = [launch.model, *common, "--tensor-parallel-size", str(launch.tensor_parallel_size)]
    else:
        program = launch.command or [sys.executable, "-m", "sglang.launch_server"]
        args = ["--model-path", launch.model, *common, "--tp-size", str(launch.tensor_parallel_size)]
    return [*program, *args, *launch.extra_args]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SupervisedServer:
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        assert settings.launch is not None  # the settings' validator requires it
        self.name = name
        self.type = settings.type
        self.launch = settings.launch
        self.port = self.launch.port or _free_port(self.launch.host)
        self.served_name = self.launch.served_model_name or self.launch.model
        self.argv = command_line(settings.type, self.launch, self.port)
        base_url = f"http://{self.launch.host}:{self.port}/v1"
        upstream = settings.model_copy(update={"type": "openai-compatible", "base_url": base_url, "launch": None})
        self.upstream = OpenAICompatible(name, upstream)
        self.state = "loading"
        self.error: str | None = None
        self.restarts = 0
        self.process: asyncio.subprocess.Process | None = None
        self._closing = False
        self._runner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.upstream.start()
        self._runner = asyncio.create_task(self._supervise(), name=f"supervise-{self.name}")

    async def close(self) -> None:
        self._closing = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._stop_child()
        await self.upstream.close()

    async def _supervise(self) -> None:
        backoff = 1.0
        while not self._closing:
            self.state, started = "loading", time.monotonic()
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *self.argv, env={**os.environ, **self.launch.env}, start_new_session=True
                )
            except OSError as exc:
                self.error = f"cannot start {self.argv[0]!r}: {exc}"
            else:
                log.info("engine %s: started %s (pid %d)", self.name, " ".join(self.argv), self.process.pid)
                if await self._until_ready(self.process, started):
                    self.state, self.error, backoff = "ready", None, 1.0
                    log.info("engine %s ready on port %d", self.name, self.port)
                    code = await self.process.wait()
                    self.error = f"server exited with code {code}"
                else:
                    await self._stop_child()
            self.state = "failed"
            if self._closing:
                return
            log.warning("engine %s: %s; restarting in %.0f s", self.name, self.error, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            self.restarts += 1

    async def _until_ready(self, process: asyncio.subprocess.Process, started: float) -> bool:
        """Poll GET /v1/models until it answers 200; False when the child exits or takes too long."""
        url = f"http://{self.launch.host}:{self.port}/v1/models"
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while process.returncode is None:
                if time.monotonic() - started > self.launch.ready_timeout:
                    self.error = f"not ready after {self.launch.ready_timeout:g} s"
                    return False
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as answer:
                        if answer.status == 200:
                            return True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), PROBE_INTERVAL)
        self.error = f"server exited with code {process.returncode} before it was ready"
        return False

    async def _stop_child(self) -> None:
        """SIGTERM to the child's process group, SIGKILL after stop_timeout."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.launch.stop_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    def _renamed(self, call: Call) -> Call:
        if self.state != "ready":
            reason = f": {self.error}" if self.error else ""
            raise UpstreamUnavailable(f"engine {self.name!r} is not ready ({self.state}{reason})")
        return Call(call.kind, call.body, call.raw, self.served_name, call.stream)

    async def complete(self, call: Call) -> Reply:
        return await self.upstream.complete(self._renamed(call))

    async def stream(self, call: Call) -> Stream:
        return await self.upstream.stream(self._renamed(call))

    def status(self) -> dict[str, Any]:
        """What GET /admin/engines and /metrics show."""
        pid = self.process.pid if self.process is not None and self.process.returncode is None else None
        return {
            "provider": self.name,
            "type": self.type,
            "model_path": self.launch.model,
            "command": self.argv,
            "base_url": self.upstream.base_url,
            "state": self.state,
            "error": self.error,
            "replicas": [{"index": 0, "state": self.state, "pid": pid, "restarts": self.restarts, "error": self.error}],
            "replicas_wanted": 1,
            "replicas_ready": int(self.state == "ready"),
        }

"""A replica: one worker process of an engine, its pipe, and the calls in flight on it.

A reader thread turns the worker's messages into events on the event loop, so the loop never blocks on
the pipe. When the process dies, every call in flight on it is told ("died",) and the replica can be
started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
from typing import Any, Literal

from openfoundry.engines import worker
from openfoundry.engines.worker import WorkerOptions

log = logging.getLogger("openfoundry.engines")
State = Literal["stopped", "loading", "ready", "failed"]
Inbox = asyncio.Queue[tuple[Any, ...]]


class Replica:
    def __init__(self, engine: str, index: int, options: WorkerOptions) -> None:
        self.engine = engine
        self.index = index
        self.options = options
        self.state: State = "stopped"
        self.error: str | None = None
        self.info: dict[str, Any] = {}
        self.calls: dict[int, Inbox] = {}
        self.restarts = 0
        self.load_failed = False
        """The worker could not load the model (a bad file, too little memory): not worth restarting."""
        self.process: multiprocessing.process.BaseProcess | None = None
        self._conn: Any = None
        self._send_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.settled = asyncio.Event()
        """Set once the worker said ready or failed, or died."""
        self.exited = asyncio.Event()

    @property
    def load(self) -> int:
        return len(self.calls)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(
            target=worker.main, args=(child, self.options), name=f"foundry-{self.engine}-{self.index}", daemon=True
        )
        self.state, self.error = "loading", None
        self.settled.clear()
        self.exited.clear()
        self.process.start()
        child.close()
        self._conn = parent
        threading.Thread(target=self._read, args=(parent,), name=f"{self.process.name}-reader", daemon=True).start()

    def send(self, message: tuple[Any, ...]) -> bool:
        """Send to the worker; False when it is gone (its death is reported separately)."""
        if self._conn is None:
            return False
        try:
            with self._send_lock:
                self._conn.send(message)
        except (OSError, ValueError):
            return False
        return True

    def _read(self, conn: Any) -> None:
        """Reader thread: every message onto the loop; the end of the pipe means the process died."""
        assert self._loop is not None
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            self._loop.call_soon_threadsafe(self._on_message, message)
        with contextlib.suppress(RuntimeError):  # the loop closed first: nothing left to tell
            self._loop.call_soon_threadsafe(self._on_exit)

    def _on_message(self, message: tuple[Any, ...]) -> None:
        if message[0] == "ready":
            self.state, self.info = "ready", message[1]
            self.settled.set()
        elif message[0] == "failed":
            self.state, self.error, self.load_failed = "failed", message[1], True
            log.error("engine %s replica %d failed to load: %s", self.engine, self.index, message[1])
            self.settled.set()
        else:
            inbox = self.calls.get(message[0])
            if inbox is not None:
                inbox.put_nowait(message)

    def _on_exit(self) -> None:
        code = None
        if self.process is not None:
            self.process.join(timeout=1)
            code = self.process.exitcode
        if self.state != "failed":
            self.error = f"worker process exited (code {code})"
            self.state = "failed"
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        for inbox in self.calls.values():
            inbox.put_nowait((None, "died", self.error))
        self.calls.clear()
        self.settled.set()
        self.exited.set()

    async def stop(self, grace: float = 5.0) -> None:
        process = self.process
        if process is None:
            return
        self.send(("stop",))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.exited.wait(), grace)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 5)
        self.state = "stopped"

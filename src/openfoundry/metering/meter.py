"""The meter: takes usage records on the hot path and gets them to the database.

`record()` is one append to this process's spool (see spool.py); a flusher task writes what was spooled
to the database every `interval` seconds, or sooner once `batch` records wait. Writes ignore ids already
stored, so replays never count a call twice. While the database cannot be reached, records stay spooled
and the flusher retries on its next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from openfoundry.metering.record import UsageRecord
from openfoundry.metering.spool import Spool, read_batches

log = logging.getLogger("openfoundry.metering")

ROWS_PER_TRANSACTION = 5000
"""How many records one insert carries when a large segment (left by a long outage) is stored."""
ADOPT_EVERY = 60
"""Ticks between looks for segments left by dead sibling processes (`--workers`), besides at start."""


class UsageSink(Protocol):
    """Where usage goes: store/usage.py's UsageStore. `insert` must ignore ids it already holds."""

    async def insert(self, records: Sequence[Mapping[str, Any]]) -> None: ...


class Meter:
    """One per process: `start()` before serving, `record()` per call, `close()` at shutdown."""

    def __init__(
        self, sink: UsageSink, folder: Path, *, interval: float = 0.5, batch: int = 500, close_within: float = 10.0
    ) -> None:
        self.sink = sink
        self.spool = Spool(folder)
        self.interval = interval
        self.batch = batch
        self.close_within = close_within
        self.unspooled: list[dict[str, Any]] = []
        """Records the spool refused (a full disk): kept in memory until stored."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failing = False

    async def start(self) -> None:
        """Adopt the segments of processes that died, store them, then open our own segment and flush."""
        adopted = self.spool.adopt_orphans()
        if adopted:
            log.info("replaying %d usage spool segment(s) left by stopped processes", adopted)
        self.spool.open()
        await self.flush()
        self._task = asyncio.create_task(self._run(), name="usage-flusher")

    def record(self, record: UsageRecord) -> None:
        """Spool one record: on the hot path, synchronous, a few microseconds."""
        try:
            self.spool.append(record)
        except OSError as exc:
            log.error("usage spool write failed (%s); record %s kept in memory", exc, record.id)
            self.unspooled.append(record.to_dict())
            return
        if self.spool.pending >= self.batch and not self._failing:
            self._wake.set()

    async def close(self) -> None:
        """Stop the flusher, store everything left and remove our spool. If the database cannot take it
        within `close_within` seconds, the segments stay on disk and the next process to start stores them."""
        self._stopping = True
        self._wake.set()

        async def drain() -> bool:
            if self._task is not None:
                await self._task
            return await self.flush(final=True)

        try:
            stored = await asyncio.wait_for(drain(), self.close_within)
        except TimeoutError:
            stored = False
        if not stored:
            log.error("usage not all stored at shutdown; the spool in %s is replayed at next start", self.spool.folder)
            if self.unspooled:
                log.error("%d usage record(s) that never reached the spool are lost", len(self.unspooled))
        self.spool.close(delete=stored)

    async def _run(self) -> None:
        ticks = 0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            ticks += 1
            try:
                if ticks % ADOPT_EVERY == 0:
                    self.spool.adopt_orphans()
                await self.flush()
            except Exception:  # the flusher must outlive any one tick; what failed stays spooled
                log.exception("usage flusher tick failed")

    async def flush(self, *, final: bool = False) -> bool:
        """Seal the live segment and store every sealed one, oldest first, deleting each once stored.
        While older segments still wait (the database was down), appends stay in the live segment.
        Returns False when the database could not take them; nothing is lost then."""
        try:
            if final or not self.spool.sealed:
                self.spool.seal(reopen=not final)
        except OSError as exc:
            log.error("cannot rotate the usage spool: %s", exc)
        try:
            if self.unspooled:
                waiting, self.unspooled = self.unspooled, []
                try:
                    await self.sink.insert(waiting)
                except BaseException:
                    self.unspooled[:0] = waiting
                    raise
            while self.spool.sealed:
                segment = self.spool.sealed[0]
                await self._store(segment.path)
                self.spool.sealed.pop(0)
                segment.release(delete=True)
        except Exception as exc:  # any database failure: keep everything spooled, retry next tick
            if not self._failing:
                log.warning("usage database unavailable (%s: %s); records stay spooled", type(exc).__name__, exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("usage database available again; spooled usage stored")
        self._failing = False
        return True

    async def _store(self, path: Path) -> None:
        """Insert a segment's records, reading and parsing them off the event loop."""
        batches = read_batches(path, ROWS_PER_TRANSACTION)
        try:
            while (batch := await asyncio.to_thread(next, batches, None)) is not None:
                await self.sink.insert(batch)
        finally:
            with contextlib.suppress(ValueError):  # still running in its thread if we were cancelled
                batches.close()

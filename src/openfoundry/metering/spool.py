"""The usage spool: per-process, append-only files of JSON lines that outlive a killed process.

Each gateway process appends every usage record to its own *segment* in the spool folder, with one
`os.write` on an O_APPEND descriptor. There is no fsync per record, on purpose: once write() returns,
the bytes are in the kernel's page cache, which outlives the process, so `kill -9` loses nothing (a
power cut can lose the last moments; that is the price of microseconds on the hot path).

A process holds an exclusive `flock` on each of its segments while it lives. The kernel drops the locks
of a dead process, so a segment whose lock can be taken has no owner any more: the next process to start
adopts it and writes it to the database. Segments rotate: the meter seals the live one when it flushes,
stores the sealed one, then deletes it. The database ignores ids it already holds, so a crash between
the insert and the delete only means a harmless replay.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from openfoundry.metering.record import UsageRecord

log = logging.getLogger("openfoundry.metering")

PREFIX = "usage-"
SUFFIX = ".jsonl"
STAGING = ".new"
"""A segment is created under this extra suffix and renamed only once locked, so no one adopts it early."""
STALE_STAGING_SECONDS = 60.0


def spool_folder(root: str | Path, database: str) -> Path:
    """The spool folder for one database under `root`: gateways sharing a spool root but not a database
    never replay each other's records into the wrong place."""
    tag = hashlib.sha256(database.encode()).hexdigest()[:16]
    return Path(root).expanduser() / tag


@dataclass(slots=True)
class Segment:
    path: Path
    fd: int
    """Open, and holding the exclusive flock that tells other processes the segment is owned."""

    def release(self, *, delete: bool) -> None:
        """Let go of the segment (closing the descriptor drops the lock), deleting the file first if asked."""
        if delete:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)


class Spool:
    """This process's segments: the live one taking appends, and sealed ones waiting to be stored."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.live: Segment | None = None
        self.sealed: list[Segment] = []
        self.pending = 0
        """Records appended to the live segment."""
        self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._serial = 0
        self._torn = False

    def open(self) -> None:
        self.live = self._create()

    def _create(self) -> Segment:
        for attempt in range(3):
            self._serial += 1
            path = self.folder / f"{PREFIX}{self._token}-{self._serial:08d}{SUFFIX}"
            staging = path.with_name(path.name + STAGING)
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:  # the folder was removed as we created it: once more
                if attempt == 2:
                    raise
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)  # a replayer may hold it for an instant while it looks
            os.rename(staging, path)
            return Segment(path, fd)
        raise AssertionError("unreachable")

    def append(self, record: UsageRecord) -> None:
        """One line, one write(2), no fsync (see the module docstring). Raises OSError when the disk
        refuses; a line cut short by that is closed off before the next one, so only it is unreadable."""
        if self.live is None:
            raise OSError("the usage spool is not open")
        data = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        if self._torn:
            data = b"\n" + data
        view = memoryview(data)
        wrote = False
        try:
            while view:
                count = os.write(self.live.fd, view)
                wrote = wrote or count > 0
                view = view[count:]
        except OSError:
            self._torn = self._torn or wrote
            raise
        self._torn = False
        self.pending += 1

    def seal(self, *, reopen: bool = True) -> None:
        """Move the live segment, if it holds anything, to `sealed`; appends go to a fresh one (or,
        with reopen=False at shutdown, nowhere)."""
        if self.live is None or not (self.pending or self._torn or not reopen):
            return
        fresh = self._create() if reopen else None
        self.sealed.append(self.live)
        self.live, self.pending, self._torn = fresh, 0, False

    def adopt_orphans(self) -> int:
        """Lock and take over every segment in the folder whose owner is gone; returns how many."""
        if not self.folder.is_dir():
            return 0
        adopted = 0
        for path in sorted(self.folder.iterdir()):
            name = path.name
            if not name.startswith(PREFIX) or not name.endswith((SUFFIX, STAGING)):
                continue
            fd = _lock_if_unowned(path)
            if fd is None:
                continue
            if name.endswith(SUFFIX):
                self.sealed.append(Segment(path, fd))
                adopted += 1
            else:  # a staging file whose creator died before publishing it: empty by construction
                Segment(path, fd).release(delete=_age(path) > STALE_STAGING_SECONDS)
        return adopted

    def close(self, *, delete: bool) -> None:
        """Release every segment, deleting them only when everything in them is stored."""
        segments = [*self.sealed, *([self.live] if self.live else [])]
        for segment in segments:
            segment.release(delete=delete)
        self.sealed, self.live = [], None
        if delete:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when no other process spools here


def _lock_if_unowned(path: Path) -> int | None:
    """A descriptor holding the segment's lock, or None if a live process holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def read_batches(path: Path, size: int) -> Generator[list[dict[str, Any]], None, None]:
    """The records of a segment, `size` at a time. A line that does not parse (a last line torn by a
    crash mid-write) is skipped with a warning, never fatal."""
    batch: list[dict[str, Any]] = []
    try:
        file = path.open("rb")
    except FileNotFoundError:  # its owner stored and deleted it just before we adopted it
        return
    with file:
        for number, line in enumerate(file, 1):
            record = _parse(line)
            if record is None:
                if line.strip():
                    log.warning("%s:%d: skipped a torn or unreadable usage record", path, number)
                continue
            batch.append(record)
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return None
    if not isinstance(record.get("ts"), int | float):
        return None
    return record

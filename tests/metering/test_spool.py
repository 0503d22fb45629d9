"""The spool and the meter: records reach the database once, whatever crashes or outages come between."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from openfoundry.metering.meter import ROWS_PER_TRANSACTION, Meter
from openfoundry.metering.record import UsageRecord
from openfoundry.metering.spool import SUFFIX, Spool, read_batches, spool_folder
from openfoundry.store.usage import ROWS_PER_STATEMENT, UsageFilter, UsageStore
from tests.metering.conftest import usage


class Flaky:
    """A sink whose database can be switched off."""

    def __init__(self, store: UsageStore) -> None:
        self.store = store
        self.down = False
        self.attempts = 0

    async def insert(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.attempts += 1
        if self.down:
            raise sa.exc.OperationalError("INSERT", {}, ConnectionRefusedError("database is down"))
        await self.store.insert(records)


async def stored_ids(store: UsageStore) -> list[str]:
    return [row["id"] for row in await store.rows(UsageFilter())]


def spool_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def dead_segment(folder: Path, records: list[UsageRecord], tail: bytes = b"") -> Path:
    """A segment as a killed process leaves it: records, perhaps a torn last line, and no lock."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"usage-99999-dead-{uuid.uuid4().hex[:8]}{SUFFIX}"
    path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records) + tail)
    return path


async def test_records_reach_the_database_and_close_removes_the_spool(store: UsageStore, tmp_path: Path) -> None:
    meter = Meter(store, tmp_path / "spool", interval=0.05)
    await meter.start()
    records = [usage() for _ in range(3)]
    for record in records:
        meter.record(record)
    assert len(spool_files(tmp_path / "spool")) == 1
    for _ in range(100):
        if len(await stored_ids(store)) == 3:
            break
        await asyncio.sleep(0.05)
    assert sorted(await stored_ids(store)) == sorted(r.id for r in records)
    row = (await store.rows(UsageFilter()))[0]
    assert row["prompt_tokens"] == 3 and row["cost_usd"] == pytest.approx(0.001) and row["ttft_ms"] is None
    meter.record(last := usage())
    await meter.close()
    assert last.id in await stored_ids(store)
    assert not (tmp_path / "spool").exists()


async def test_a_full_batch_is_flushed_before_the_interval(store: UsageStore, tmp_path: Path) -> None:
    meter = Meter(store, tmp_path, interval=60, batch=5)
    await meter.start()
    for _ in range(5):
        meter.record(usage())
    for _ in range(100):
        if len(await stored_ids(store)) == 5:
            break
        await asyncio.sleep(0.02)
    assert len(await stored_ids(store)) == 5
    await meter.close()


async def test_segments_of_dead_processes_are_replayed_at_start_and_deleted(store: UsageStore, tmp_path: Path) -> None:
    records = [usage() for _ in range(4)]
    torn = orjson.dumps(usage())[:37]  # the process died in the middle of a write
    path = dead_segment(tmp_path, records, tail=torn)
    meter = Meter(store, tmp_path)
    await meter.start()
    assert sorted(await stored_ids(store)) == sorted(r.id for r in records)
    assert not path.exists()
    await meter.close()


async def test_a_segment_left_by_a_long_outage_is_stored_in_chunks(store: UsageStore, tmp_path: Path) -> None:
    records = [usage() for _ in range(ROWS_PER_TRANSACTION * 2 + 10)]
    dead_segment(tmp_path, records)
    meter = Meter(store, tmp_path)
    await meter.start()
    assert (await store.summary(UsageFilter()))[0]["requests"] == len(records)
    await meter.close()


async def test_replaying_the_same_records_twice_counts_them_once(store: UsageStore, tmp_path: Path) -> None:
    """A crash between the insert and the delete leaves a segment whose records are already stored."""
    records = [usage() for _ in range(10)]
    await store.insert([r.to_dict() for r in records[:6]])
    for _ in range(2):
        dead_segment(tmp_path, records)
        meter = Meter(store, tmp_path)
        await meter.start()
        await meter.close()
    assert sorted(await stored_ids(store)) == sorted(r.id for r in records)
    assert (await store.summary(UsageFilter()))[0]["requests"] == 10


async def test_a_live_process_segment_is_left_alone_until_it_dies(store: UsageStore, tmp_path: Path) -> None:
    other = Spool(tmp_path)  # another process's spool: it holds the lock on its segment
    other.open()
    record = usage()
    other.append(record)
    meter = Meter(store, tmp_path)
    await meter.start()
    assert await stored_ids(store) == []
    other.close(delete=False)  # the kernel drops a dead process's locks just so
    assert meter.spool.adopt_orphans() == 1
    assert await meter.flush()
    assert await stored_ids(store) == [record.id]
    await meter.close()
    assert spool_files(tmp_path) == []


async def test_database_down_then_up_loses_nothing(store: UsageStore, tmp_path: Path) -> None:
    sink = Flaky(store)
    meter = Meter(sink, tmp_path, interval=0.02)
    await meter.start()
    sink.down = True
    records = [usage() for _ in range(50)]
    for record in records[:25]:
        meter.record(record)
    for _ in range(200):
        if sink.attempts >= 5:
            break
        await asyncio.sleep(0.02)
    assert sink.attempts >= 5
    for record in records[25:]:
        meter.record(record)
    tried = sink.attempts
    for _ in range(200):  # two more flush attempts with every record spooled, both refused
        if sink.attempts >= tried + 2:
            break
        await asyncio.sleep(0.02)
    assert sink.attempts >= tried + 2
    assert await stored_ids(store) == []
    assert len(spool_files(tmp_path)) == 2  # one sealed segment waits; appends stay in the live one
    sink.down = False
    for _ in range(200):
        if len(await stored_ids(store)) == 50:
            break
        await asyncio.sleep(0.02)
    assert sorted(await stored_ids(store)) == sorted(r.id for r in records)
    await meter.close()


async def test_shutdown_with_the_database_down_keeps_the_spool_for_the_next_start(
    store: UsageStore, tmp_path: Path
) -> None:
    sink = Flaky(store)
    meter = Meter(sink, tmp_path, close_within=1.0)
    await meter.start()
    record = usage()
    meter.record(record)
    sink.down = True
    await meter.close()
    assert spool_files(tmp_path)
    restarted = Meter(store, tmp_path)
    await restarted.start()
    assert await stored_ids(store) == [record.id]
    await restarted.close()
    assert spool_files(tmp_path) == []


async def test_a_record_the_database_refuses_does_not_block_the_rest(store: UsageStore, tmp_path: Path) -> None:
    good = usage()
    bad = {**usage().to_dict(), "deployment": None}  # NOT NULL: refused as data, not as an outage
    await store.insert([bad, good.to_dict()])
    assert await stored_ids(store) == [good.id]


async def test_a_batch_of_several_statements_is_stored_once_and_whole(store: UsageStore) -> None:
    """The statements of one batch share a transaction: a refused or known row in the last one neither
    loses nor doubles the rows of the first ones."""
    records = [usage().to_dict() for _ in range(ROWS_PER_STATEMENT * 2 + 3)]
    await store.insert(records[-5:])
    bad = {**usage().to_dict(), "deployment": None}
    await store.insert([*records, bad])
    assert sorted(await stored_ids(store)) == sorted(str(r["id"]) for r in records)
    assert (await store.summary(UsageFilter()))[0]["requests"] == len(records)


def test_torn_and_garbage_lines_are_skipped(tmp_path: Path) -> None:
    records = [usage() for _ in range(3)]
    path = dead_segment(tmp_path, records[:2], tail=b"not json\n[1, 2]\n" + orjson.dumps(records[2]) + b'\n{"id')
    batches = list(read_batches(path, 2))
    assert [len(batch) for batch in batches] == [2, 1]
    assert [r["id"] for batch in batches for r in batch] == [r.id for r in records]
    assert list(read_batches(tmp_path / "gone.jsonl", 2)) == []


def test_a_failed_write_does_not_spoil_the_next_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path)
    spool.open()
    real_write = os.write
    disk = iter(["short", "full"])

    def short_then_full(fd: int, data: bytes) -> int:
        """As a filling disk does: a short write, then ENOSPC, then (space freed) whole writes."""
        state = next(disk, "ok")
        if state == "full":
            raise OSError(28, "No space left on device")
        return real_write(fd, bytes(data[:10]) if state == "short" else data)

    monkeypatch.setattr("openfoundry.metering.spool.os.write", short_then_full)
    with pytest.raises(OSError):
        spool.append(usage())
    spool.append(kept := usage())
    assert spool.live is not None
    assert [r["id"] for batch in read_batches(spool.live.path, 10) for r in batch] == [kept.id]
    spool.close(delete=True)


def test_gateways_on_different_databases_spool_apart() -> None:
    one, two = spool_folder("~/spool", "sqlite:///a.db"), spool_folder("~/spool", "sqlite:///b.db")
    assert one != two and one.parent == two.parent == Path("~/spool").expanduser()
    assert spool_folder("~/spool", "sqlite:///a.db") == one

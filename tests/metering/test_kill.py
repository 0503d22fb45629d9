"""kill -9 under load loses no usage: every call a client saw succeed is stored exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest

from openfoundry.store.db import Database
from openfoundry.store.usage import UsageFilter, UsageStore
from tests.api.test_admin import call
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server

REQUESTS = 1000
KILL_AFTER = 300
"""Successes seen by the clients before the server is killed."""
DRIP = 0.1


@pytest.fixture
def doomed(fakes: dict[str, FakeServer], database: str, tmp_path: Path) -> Iterator[Server]:
    """A gateway whose upstream streams one event every DRIP seconds, so streams of different lengths
    end at different times and the kill finds many of them half-way."""
    storage = {"database": database, "spool_dir": str(tmp_path / "spool")}
    server = Server(gateway_config(fakes, server={"admin_key": ADMIN_KEY}, storage=storage)).start()
    fakes["openai"].app["faults"].drip = DRIP
    yield server
    fakes["openai"].app["faults"].drip = 0.0
    server.stop()


@dataclass
class Load:
    server: Server
    key: str
    succeeded: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    killed_at: int | None = None

    def prompt(self, index: int) -> str:
        """Request i sends i+1 words: the fake counts words as tokens, so prompt_tokens names the request."""
        return " ".join(["w"] * (index + 1))

    async def one(self, api: openai.AsyncOpenAI, index: int) -> None:
        """Odd requests want a whole answer of 3 tokens, even ones a stream of 3 to 102 (lasting up to
        10 s): whole answers and short streams succeed first, long streams are cut by the kill."""
        stream, length = index % 2 == 0, 3 + index % 100 if index % 2 == 0 else 3
        messages = [{"role": "user", "content": self.prompt(index)}]
        expected = " ".join(("You said: " + self.prompt(index)).split(" ")[:length])
        try:
            if not stream:
                reply = await api.chat.completions.create(model="gpt", messages=messages, max_tokens=length)  # type: ignore[arg-type]
                ok = reply.choices[0].message.content == expected
            else:  # a stream succeeded only if it ended cleanly, after [DONE]
                chunks = await api.chat.completions.create(
                    model="gpt",
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=length,
                    stream=True,
                )
                ok = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices]) == expected
        except Exception:  # cut by the kill, however the SDK's transport says so: not a success
            self.failed.append(index)
            return
        assert ok, f"request {index} got a wrong answer"
        self.succeeded.append(index)
        if len(self.succeeded) >= KILL_AFTER and self.killed_at is None:
            assert self.server.process is not None
            self.server.process.kill()
            self.killed_at = len(self.succeeded)

    async def run(self) -> None:
        async with openai.AsyncOpenAI(
            base_url=self.server.url + "/v1", api_key=self.key, max_retries=0, timeout=60
        ) as api:
            await asyncio.gather(*(self.one(api, index) for index in range(REQUESTS)))


async def stored_rows(database: str) -> list[dict[str, object]]:
    db = Database(database)
    try:
        return await UsageStore(db).rows(UsageFilter(project="load"))
    finally:
        await db.close()


async def test_kill_9_during_1000_concurrent_requests_loses_no_usage(
    doomed: Server, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What can be asserted exactly, and why:

    - A call is metered (one write to the spool, which outlives the process) before its answer leaves:
      before the body of a whole reply, before the [DONE] that ends a stream. So every call a client saw
      succeed must have exactly one row with status 200. Request i sends i+1 words, and the fake counts
      words as tokens, so `prompt_tokens` tells which request a row belongs to: the match is per request,
      not only a count.
    - Calls cut by the kill may or may not have a row (a 200 whose answer never arrived, or none at all),
      so the 200 rows are at least the successes, never fewer, and never more than the requests sent.
    - No call is counted twice: no id and no request (prompt_tokens) appears in two rows, even though
      the restart replays the dead process's spool over rows the flusher had already stored.
    """
    assert call(doomed, "POST", "/admin/projects", {"name": "load"})[0] == 201
    key = call(doomed, "POST", "/admin/keys", {"project": "load", "name": "load"})[1]["key"]
    load = Load(doomed, key)
    await load.run()
    assert load.killed_at is not None and load.failed, "the kill must land while calls are in flight"
    assert doomed.process is not None
    doomed.process.wait()
    flushed = len(await stored_rows(database))
    doomed.start()  # same database, same spool folder: the dead process's spool is replayed at start

    rows = await stored_rows(database)
    ok = Counter(row["prompt_tokens"] for row in rows if row["status"] == 200)
    missing = [i for i in load.succeeded if ok[i + 1] != 1]
    assert not missing, f"{len(missing)} successful calls without exactly one usage row, e.g. {missing[:5]}"
    assert len({row["id"] for row in rows}) == len(rows) <= REQUESTS
    assert all(count == 1 for count in ok.values()), "a call was counted twice"
    with capsys.disabled():
        print(
            f"\nkill -9 ({database.split(':')[0]}): {REQUESTS} sent, {len(load.succeeded)} succeeded "
            f"(killed after {load.killed_at}), {len(load.failed)} failed; {len(rows)} rows stored, "
            f"{sum(ok.values())} with status 200, {len(rows) - sum(ok.values())} other; "
            f"{flushed} were stored before the kill, {len(rows) - flushed} replayed from the spool at restart"
        )

    answer = await openai.AsyncOpenAI(base_url=doomed.url + "/v1", api_key=key, max_retries=0).chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "after the restart"}]
    )
    assert answer.choices[0].message.content == "You said: after the restart"
    for _ in range(100):  # the restarted process meters as before
        if len(await stored_rows(database)) == len(rows) + 1:
            break
        await asyncio.sleep(0.1)
    assert len(await stored_rows(database)) == len(rows) + 1

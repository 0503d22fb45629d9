"""The lean Redis connection under the limit store: URL settings, error replies, timeouts, reconnecting."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis

from openfoundry.limits.resp import Connection, ReplyError, command

REDIS = os.environ.get("FOUNDRY_TEST_REDIS")
needs_redis = pytest.mark.skipif(REDIS is None, reason="needs FOUNDRY_TEST_REDIS (set by .ci/run)")


async def ask(connection: Connection, *args: str | int) -> Any:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    connection.send(command(*args), future.set_result)
    return await future


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert command("SET", "k", 1.5, b"\r\n") == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n1.5\r\n$2\r\n\r\n\r\n"


def test_only_redis_urls() -> None:
    with pytest.raises(ValueError, match="redis://"):
        Connection("http://127.0.0.1:6379", 0.25)


@pytest.fixture
async def acl_user() -> AsyncIterator[str]:
    """A Redis user with a password, so AUTH is exercised for real; removed afterwards."""
    assert REDIS is not None
    admin = redis.Redis.from_url(REDIS)
    await admin.execute_command("ACL", "SETUSER", "foundry-test", "on", ">s3cret/pw", "~*", "&*", "+@all")
    yield REDIS.split("//", 1)[1].split("/", 1)[0]
    await admin.execute_command("ACL", "DELUSER", "foundry-test")
    await admin.aclose()


@needs_redis
async def test_the_url_names_user_password_and_database(acl_user: str) -> None:
    connection = Connection(f"redis://foundry-test:s3cret%2Fpw@{acl_user}/15", 0.5)
    assert await ask(connection, "SET", "foundry:resp-test", "here") == b"OK"
    assert await ask(connection, "ACL", "WHOAMI") == b"foundry-test"
    await connection.close()
    check = redis.Redis.from_url(f"redis://{acl_user}/15")
    assert await check.get("foundry:resp-test") == b"here"  # db 15, not 0
    await check.delete("foundry:resp-test")
    await check.aclose()


@needs_redis
async def test_a_refused_password_fails_the_commands_behind_it(acl_user: str) -> None:
    connection = Connection(f"redis://foundry-test:wrong@{acl_user}/15", 0.5)
    reply = await ask(connection, "PING")
    assert isinstance(reply, ReplyError) and "WRONGPASS" in str(reply)
    await connection.close()


@needs_redis
async def test_error_replies_come_back_as_errors_in_order() -> None:
    assert REDIS is not None
    connection = Connection(REDIS, 0.5)
    replies = await asyncio.gather(ask(connection, "EVALSHA", "0" * 40, 0), ask(connection, "PING"))
    assert isinstance(replies[0], ReplyError) and str(replies[0]).startswith("NOSCRIPT")
    assert replies[1] == b"PONG"
    await connection.close()


async def test_unreachable_redis_fails_fast() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    reply = await ask(Connection(f"redis://127.0.0.1:{port}/0", 0.5), "PING")
    assert isinstance(reply, ConnectionError) and "cannot reach Redis" in str(reply)


async def test_an_unanswered_command_times_out_and_the_next_one_reconnects() -> None:
    connections = 0

    async def silent_then_helpful(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        while await reader.read(4096):
            if not first:
                writer.write(b"+PONG\r\n")
        writer.close()

    server = await asyncio.start_server(silent_then_helpful, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = Connection(f"redis://127.0.0.1:{port}", 0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await ask(connection, "PING")
    assert isinstance(reply, TimeoutError) and 0.15 <= loop.time() - started < 1.5
    assert await ask(connection, "PING") == b"PONG"
    assert connections == 2
    await connection.close()
    server.close()

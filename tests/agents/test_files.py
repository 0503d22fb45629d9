"""/v1/files through the official `openai` SDK: upload, list, get, content, delete, limits, isolation."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import openai
import pytest

from tests.agents.files_support import project_client, upload
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server

LIMIT = 4096


@pytest.fixture(scope="module")
def files_server(fakes: dict[str, FakeServer]) -> Iterator[Server]:
    config = gateway_config(fakes, server={"admin_key": ADMIN_KEY}, agents={"max_file_bytes": LIMIT})
    server = Server(config).start()
    yield server
    server.stop()


def test_upload_list_get_content_and_delete(files_server: Server) -> None:
    client, _ = project_client(files_server)
    created = client.files.create(file=("notes.md", b"# Notes\nremember the milk\n"), purpose="assistants")
    assert created.object == "file" and created.id.startswith("file-")
    assert (created.filename, created.bytes, created.purpose, created.status) == (
        "notes.md",
        26,
        "assistants",
        "processed",
    )
    assert created.created_at > 1_700_000_000 and created.expires_at is None

    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).content == b"# Notes\nremember the milk\n"
    assert [f.id for f in client.files.list()] == [created.id]
    assert [f.id for f in client.files.list(purpose="assistants")] == [created.id]
    assert list(client.files.list(purpose="batch")) == []

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "file")
    with pytest.raises(openai.NotFoundError) as missing:
        client.files.retrieve(created.id)
    assert missing.value.body["code"] == "not_found"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)


def test_the_list_pages_through_cursors_in_either_order(files_server: Server) -> None:
    client, _ = project_client(files_server)
    ids = [upload(client, f"f{n}.txt", f"file number {n}") for n in range(3)]
    first = client.files.list(limit=2)
    assert [f.id for f in first.data] == ids[:0:-1] and first.has_more
    assert [f.id for f in client.files.list(limit=2)] == ids[::-1]  # the SDK follows the `after` cursor
    assert [f.id for f in client.files.list(limit=1, order="asc")] == ids
    after = client.files.list(limit=5, order="asc", after=ids[0])
    assert [f.id for f in after.data] == ids[1:] and not after.has_more
    with pytest.raises(openai.BadRequestError) as unknown:
        client.files.list(after="file-nothing")
    assert unknown.value.body["param"] == "after"  # type: ignore[index]


def test_a_file_over_the_limit_is_refused_with_413(files_server: Server) -> None:
    client, _ = project_client(files_server)
    with pytest.raises(openai.APIStatusError) as refused:
        client.files.create(file=("big.txt", b"x" * (LIMIT + 1)), purpose="assistants")
    assert refused.value.status_code == 413
    assert refused.value.body["code"] == "file_too_large"  # type: ignore[index]
    assert str(LIMIT) in refused.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as far_over:
        client.files.create(file=("bigger.txt", b"x" * (LIMIT * 40)), purpose="assistants")
    assert far_over.value.status_code == 413
    assert upload(client, "exact.txt", b"y" * LIMIT)
    assert next(iter(client.files.list())).bytes == LIMIT


def test_bad_uploads_are_400_in_openais_error_shape(files_server: Server) -> None:
    client, _ = project_client(files_server)
    with pytest.raises(openai.BadRequestError) as purpose:
        client.files.create(file=("a.txt", b"a"), purpose="homework")  # type: ignore[arg-type]
    assert purpose.value.body["param"] == "purpose"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as no_file:
        client.post("/files", body={"purpose": "assistants"}, cast_to=object)
    assert "multipart" in no_file.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as expiry:
        client.files.create(
            file=("a.txt", b"a"), purpose="assistants", expires_after={"anchor": "created_at", "seconds": 5}
        )
    assert expiry.value.body["param"] == "expires_after"  # type: ignore[index]
    kept = client.files.create(
        file=("b.txt", b"b"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert kept.expires_at is not None and kept.expires_at - kept.created_at in (3599, 3600, 3601)


def test_files_need_a_key(files_server: Server) -> None:
    request = urllib.request.Request(files_server.url + "/v1/files")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401


def test_projects_see_only_their_own_files(files_server: Server) -> None:
    alice, _ = project_client(files_server)
    bob, _ = project_client(files_server)
    secret = upload(alice, "secret.txt", "alice's plans")
    assert list(bob.files.list()) == []
    for attempt in (
        lambda: bob.files.retrieve(secret),
        lambda: bob.files.content(secret),
        lambda: bob.files.delete(secret),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert alice.files.content(secret).content == b"alice's plans"

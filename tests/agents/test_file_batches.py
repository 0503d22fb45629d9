"""/v1/vector_stores/{id}/file_batches through the official `openai` SDK."""

from __future__ import annotations

import io

import openai
import pytest

from tests.agents.files_support import project_client, upload
from tests.fakes.server import FakeServer
from tests.harness import Server
from tests.metering.test_usage_api import wait_for_requests


def test_upload_and_poll_indexes_every_file(server: Server) -> None:
    client, _ = project_client(server)
    store = client.vector_stores.create(name="batch")
    batch = client.vector_stores.file_batches.upload_and_poll(
        store.id,
        files=[io.BytesIO(b"the lighthouse keeper"), io.BytesIO(b"the mountain goat")],
    )
    assert batch.object == "vector_store.files_batch" and batch.status == "completed"
    assert (batch.file_counts.completed, batch.file_counts.total) == (2, 2)
    listed = list(client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id))
    assert len(listed) == 2 and all(f.status == "completed" for f in listed)
    assert client.vector_stores.retrieve(store.id).file_counts.completed == 2
    assert "lighthouse" in client.vector_stores.search(store.id, query="lighthouse").data[0].content[0].text


def test_files_carry_their_own_attributes(server: Server) -> None:
    client, _ = project_client(server)
    store = client.vector_stores.create(name="batch")
    red, blue = upload(client, "red.txt", "a red apple"), upload(client, "blue.txt", "a blue apple")
    batch = client.vector_stores.file_batches.create_and_poll(
        store.id,
        files=[{"file_id": red, "attributes": {"colour": "red"}}, {"file_id": blue, "attributes": {"colour": "blue"}}],
    )
    assert batch.status == "completed" and batch.file_counts.completed == 2
    found = client.vector_stores.search(
        store.id, query="apple", filters={"type": "eq", "key": "colour", "value": "blue"}
    )
    assert [r.filename for r in found.data] == ["blue.txt"]
    again = client.vector_stores.file_batches.create_and_poll(store.id, file_ids=[red])
    assert again.file_counts.total == 1 and again.status == "completed"  # already in the store: counted, not redone


def test_a_cancelled_batch_stops_its_files(server: Server, fakes: dict[str, FakeServer]) -> None:
    client, project = project_client(server)
    store = client.vector_stores.create(name="slow")
    file_id = upload(client, "slow.txt", "a slow snail")
    fakes["openai"].app["faults"].delay = 1.0  # the embeddings call takes a second
    batch = client.vector_stores.file_batches.create(store.id, file_ids=[file_id])
    assert batch.status == "in_progress"
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled" and cancelled.file_counts.cancelled == 1
    wait_for_requests(server, 1, project=project, deployment="embed")  # the embedding came back meanwhile
    assert client.vector_stores.files.retrieve(file_id, vector_store_id=store.id).status == "cancelled"
    assert client.vector_stores.search(store.id, query="snail").data == []


def test_bad_batches_are_refused(server: Server) -> None:
    client, _ = project_client(server)
    other, _ = project_client(server)
    store = client.vector_stores.create(name="batch")
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.file_batches.create(store.id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.file_batches.create(store.id, file_ids=[upload(other, "x.txt", "not yours")])
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.file_batches.retrieve("vsfb_nothing", vector_store_id=store.id)
    mine = client.vector_stores.file_batches.create_and_poll(store.id, file_ids=[upload(client, "y.txt", "mine")])
    with pytest.raises(openai.NotFoundError):
        other.vector_stores.file_batches.retrieve(mine.id, vector_store_id=store.id)

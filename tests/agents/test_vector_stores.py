"""/v1/vector_stores through the official `openai` SDK: stores, their files, search, isolation.

The shared gateway's default embedding deployment is `embed` (the OpenAI fake, whose vectors are
hashes of the text); semantic ranking with vectors that mean something is in test_search.py.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import openai
import pytest

from tests.agents.files_support import indexed, project_client, store_with, upload
from tests.api.test_admin import call
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server
from tests.metering.test_usage_api import wait_for_requests

LIBRARY = {
    "biology.txt": "Photosynthesis turns light, water and carbon dioxide into sugar inside the chloroplasts of a leaf.",
    "history.md": "# Rome\nThe Roman republic became an empire when Augustus took power after the civil wars.",
    "cooking.html": "<html><body><h1>Bread</h1><p>Knead the dough for ten minutes, then let it rise.</p>"
    "<script>var tracking = 'photosynthesis';</script></body></html>",
}


def test_a_store_indexes_its_files_and_reports_them(server: Server) -> None:
    client, _ = project_client(server)
    ids = [upload(client, name, text) for name, text in LIBRARY.items()]
    created = client.vector_stores.create(name="library", file_ids=ids, metadata={"owner": "tests"})
    assert created.object == "vector_store" and created.id.startswith("vs_")
    assert created.name == "library" and created.metadata == {"owner": "tests"} and created.file_counts.total == 3

    store = indexed(client, created.id)
    assert store.status == "completed" and store.usage_bytes > 0
    assert store.file_counts.model_dump() == {"in_progress": 0, "completed": 3, "failed": 0, "cancelled": 0, "total": 3}
    files = list(client.vector_stores.files.list(created.id))
    assert sorted(f.id for f in files) == sorted(ids)
    for file in files:
        assert file.status == "completed" and file.last_error is None and file.vector_store_id == created.id
        assert file.chunking_strategy is not None and file.chunking_strategy.model_dump() == {
            "type": "static",
            "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
        }
    assert [f.id for f in client.vector_stores.files.list(created.id, filter="failed")] == []
    assert created.id in [s.id for s in client.vector_stores.list()]


def test_a_keyword_query_ranks_the_file_that_has_it_first(server: Server) -> None:
    client, _ = project_client(server)
    store_id = store_with(client, LIBRARY)
    results = client.vector_stores.search(store_id, query="photosynthesis")
    first = results.data[0]
    assert first.filename == "biology.txt" and "chloroplasts" in first.content[0].text
    assert 0 < first.score <= 1 and first.content[0].type == "text"
    assert all(r.score <= first.score for r in results.data)
    augustus = client.vector_stores.search(store_id, query=["who was Augustus", "empire"], max_num_results=1)
    assert [r.filename for r in augustus.data] == ["history.md"]
    html = client.vector_stores.search(store_id, query="knead dough").data[0]
    assert html.filename == "cooking.html" and "Knead the dough" in html.content[0].text
    assert "<p>" not in html.content[0].text and "tracking" not in html.content[0].text  # markup and scripts


def test_filters_select_files_by_their_attributes(server: Server) -> None:
    client, _ = project_client(server)
    store = client.vector_stores.create(name="reports")
    for name, attributes in (
        ("a.txt", {"year": 2022, "team": "red", "public": True}),
        ("b.txt", {"year": 2023, "team": "blue", "public": False}),
        ("c.txt", {"year": 2024, "team": "red"}),
    ):
        file_id = upload(client, name, f"quarterly revenue report of {name}")
        added = client.vector_stores.files.create_and_poll(
            file_id=file_id, vector_store_id=store.id, attributes=attributes
        )
        assert added.status == "completed" and added.attributes == attributes

    def found(filters: object) -> list[str]:
        results = client.vector_stores.search(store.id, query="revenue", filters=filters)  # type: ignore[arg-type]
        return sorted(r.filename for r in results.data)

    assert found({"type": "eq", "key": "team", "value": "red"}) == ["a.txt", "c.txt"]
    assert found({"type": "gte", "key": "year", "value": 2023}) == ["b.txt", "c.txt"]
    assert found({"type": "in", "key": "team", "value": ["blue", "green"]}) == ["b.txt"]
    assert found({"type": "nin", "key": "team", "value": ["blue"]}) == ["a.txt", "c.txt"]
    assert found({"type": "eq", "key": "public", "value": True}) == ["a.txt"]
    assert found({"type": "ne", "key": "public", "value": True}) == ["b.txt"]  # c.txt has no `public`
    both = {
        "type": "and",
        "filters": [{"type": "eq", "key": "team", "value": "red"}, {"type": "lt", "key": "year", "value": 2024}],
    }
    assert found(both) == ["a.txt"]
    either = {
        "type": "or",
        "filters": [{"type": "eq", "key": "team", "value": "blue"}, {"type": "gt", "key": "year", "value": 2023}],
    }
    assert found(either) == ["b.txt", "c.txt"]
    with pytest.raises(openai.BadRequestError) as bad:
        found({"type": "like", "key": "team", "value": "r%"})
    assert bad.value.body["param"] == "filters.type"  # type: ignore[index]


def test_unreadable_files_fail_with_last_error_not_a_500(server: Server) -> None:
    client, _ = project_client(server)
    store = client.vector_stores.create(name="mixed")
    pdf = upload(client, "report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n")
    latin1 = upload(client, "notes.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
    failed = client.vector_stores.files.create_and_poll(file_id=pdf, vector_store_id=store.id)
    assert failed.status == "failed" and failed.last_error is not None
    assert failed.last_error.code == "unsupported_file" and ".pdf" in failed.last_error.message
    invalid = client.vector_stores.files.create_and_poll(file_id=latin1, vector_store_id=store.id)
    assert invalid.status == "failed" and invalid.last_error is not None and invalid.last_error.code == "invalid_file"
    assert client.vector_stores.retrieve(store.id).file_counts.failed == 2
    assert client.vector_stores.search(store.id, query="cafe").data == []


def test_static_chunking_is_checked_and_followed(server: Server) -> None:
    client, _ = project_client(server)
    numbers = " ".join(str(n) for n in range(1000))  # 1,000 one-token words
    static = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50}}
    store_id = store_with(client, {"numbers.txt": numbers}, chunking_strategy=static)
    hits = client.vector_stores.search(store_id, query="555", max_num_results=2).data
    spans = sorted((hit.content[0].text.split()[0], hit.content[0].text.split()[-1]) for hit in hits)
    assert spans == [("500", "599"), ("550", "649")]
    tail = client.vector_stores.search(store_id, query="999", max_num_results=1).data[0].content[0].text.split()
    assert (tail[0], tail[-1], len(tail)) == ("900", "999", 100)
    for bad, param in (
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}},
            "max_chunk_size_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101}},
            "chunk_overlap_tokens",
        ),
        ({"type": "fancy"}, "chunking_strategy"),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            client.vector_stores.create(name="bad", chunking_strategy=bad)  # type: ignore[arg-type]
        assert refused.value.body["param"].endswith(param)  # type: ignore[index]


def test_updates_and_deletes_change_what_search_finds(server: Server) -> None:
    client, _ = project_client(server)
    store_id = store_with(client, {"keep.txt": "the zebra crossing", "drop.txt": "a zebra in the zoo"})
    files = {f.id: f for f in client.vector_stores.files.list(store_id)}
    by_name = {client.files.retrieve(file_id).filename: file_id for file_id in files}

    updated = client.vector_stores.update(
        store_id, name="renamed", expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert updated.name == "renamed" and updated.expires_after is not None and updated.expires_after.days == 7
    assert updated.expires_at is not None and updated.expires_at >= updated.last_active_at + 7 * 86400 - 1  # type: ignore[operator]

    client.vector_stores.files.update(by_name["keep.txt"], vector_store_id=store_id, attributes={"kind": "road"})
    road = client.vector_stores.search(store_id, query="zebra", filters={"type": "eq", "key": "kind", "value": "road"})
    assert [r.filename for r in road.data] == ["keep.txt"]

    removed = client.vector_stores.files.delete(by_name["drop.txt"], vector_store_id=store_id)
    assert removed.deleted and removed.object == "vector_store.file.deleted"
    assert [r.filename for r in client.vector_stores.search(store_id, query="zebra").data] == ["keep.txt"]
    assert client.files.retrieve(by_name["drop.txt"]).filename == "drop.txt"  # the file itself stays

    client.files.delete(by_name["keep.txt"])  # deleting a file takes it out of its stores
    assert client.vector_stores.search(store_id, query="zebra").data == []
    assert client.vector_stores.retrieve(store_id).file_counts.total == 0

    deleted = client.vector_stores.delete(store_id)
    assert deleted.deleted and deleted.object == "vector_store.deleted"
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store_id)


def test_file_content_is_the_extracted_text(server: Server) -> None:
    client, _ = project_client(server)
    store_id = store_with(client, {"page.html": "<p>Hello <b>there</b></p>"})
    file_id = next(iter(client.vector_stores.files.list(store_id))).id
    assert [(c.type, c.text) for c in client.vector_stores.files.content(file_id, vector_store_id=store_id)] == [
        ("text", "Hello there")
    ]


def test_search_input_is_checked(server: Server) -> None:
    client, _ = project_client(server)
    store_id = store_with(client, {"a.txt": "alpha"})
    for kwargs, param in (
        ({"query": "alpha", "max_num_results": 51}, "max_num_results"),
        ({"query": ""}, "query"),
        ({"query": "alpha", "ranking_options": {"score_threshold": 2}}, "ranking_options.score_threshold"),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            client.vector_stores.search(store_id, **kwargs)  # type: ignore[arg-type]
        assert refused.value.body["param"] == param  # type: ignore[index]
    everything = client.vector_stores.search(store_id, query="alpha", ranking_options={"score_threshold": 0.0})
    assert [r.filename for r in everything.data] == ["a.txt"]
    picky = client.vector_stores.search(store_id, query="omega", ranking_options={"score_threshold": 0.99})
    assert picky.data == []


def test_embeddings_are_limited_and_metered_to_the_project(server: Server) -> None:
    client, project = project_client(server)
    store_with(client, {"a.txt": "alpha", "b.txt": "beta"})
    total = wait_for_requests(server, 2, project=project, deployment="embed")
    assert total["prompt_tokens"] > 0
    status, key = call(server, "POST", "/admin/keys", {"project": project, "name": "chat-only", "deployments": ["gpt"]})
    assert status == 201
    chat_only = openai.OpenAI(base_url=server.url + "/v1", api_key=key["key"], max_retries=0)
    store = chat_only.vector_stores.create(name="nothing to embed with")
    with pytest.raises(openai.BadRequestError) as refused:
        chat_only.vector_stores.files.create(vector_store_id=store.id, file_id=upload(chat_only, "c.txt", "gamma"))
    assert refused.value.body["code"] == "no_embedding_deployment"  # type: ignore[index]


def test_indexing_waits_out_the_projects_rate_limits(server: Server, fakes: dict[str, FakeServer]) -> None:
    client, _ = project_client(server, limits={"concurrency": 1})
    ids = [upload(client, f"{n}.txt", f"note number {n}") for n in range(3)]
    fakes["openai"].app["faults"].delay = 0.3  # the three files' embeddings overlap: two wait their turn
    store = indexed(client, client.vector_stores.create(name="limited", file_ids=ids).id)
    assert (store.file_counts.completed, store.file_counts.failed) == (3, 0)


def test_projects_see_only_their_own_vector_stores(server: Server) -> None:
    alice, _ = project_client(server)
    bob, _ = project_client(server)
    store_id = store_with(alice, {"plans.txt": "the secret launch date"})
    alice_file = next(iter(alice.vector_stores.files.list(store_id))).id
    bobs_store = bob.vector_stores.create(name="bob")
    assert [s.id for s in bob.vector_stores.list()] == [bobs_store.id]
    for attempt in (
        lambda: bob.vector_stores.retrieve(store_id),
        lambda: bob.vector_stores.search(store_id, query="secret"),
        lambda: bob.vector_stores.update(store_id, name="mine"),
        lambda: bob.vector_stores.files.list(store_id),
        lambda: bob.vector_stores.files.retrieve(alice_file, vector_store_id=store_id),
        lambda: bob.vector_stores.files.create(vector_store_id=bobs_store.id, file_id=alice_file),
        lambda: bob.vector_stores.create(name="steal", file_ids=[alice_file]),
        lambda: bob.vector_stores.delete(store_id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert alice.vector_stores.search(store_id, query="secret").data[0].filename == "plans.txt"


@pytest.fixture
def on_database(fakes: dict[str, FakeServer], database: str) -> Iterator[Server]:
    config = gateway_config(fakes, server={"admin_key": ADMIN_KEY}, storage={"database": database})
    server = Server(config).start()
    yield server
    server.stop()


def test_files_and_stores_live_in_the_database(on_database: Server) -> None:
    client, _ = project_client(on_database)
    store_id = store_with(client, LIBRARY)
    on_database.restart()  # a new process: only what the database holds
    assert client.vector_stores.search(store_id, query="photosynthesis").data[0].filename == "biology.txt"
    file_id = client.vector_stores.search(store_id, query="Augustus").data[0].file_id
    assert client.files.content(file_id).content == LIBRARY["history.md"].encode()


def test_openapi_describes_files_and_vector_stores(server: Server) -> None:
    with urllib.request.urlopen(server.url + "/openapi.json", timeout=10) as answer:
        paths = json.loads(answer.read())["paths"]
    assert "multipart/form-data" in paths["/v1/files"]["post"]["requestBody"]["content"]
    for path in (
        "/v1/files/{file_id}/content",
        "/v1/vector_stores",
        "/v1/vector_stores/{store_id}/search",
        "/v1/vector_stores/{store_id}/files/{file_id}",
        "/v1/vector_stores/{store_id}/file_batches/{batch_id}/cancel",
    ):
        assert path in paths
    assert "requestBody" in paths["/v1/vector_stores/{store_id}/search"]["post"]

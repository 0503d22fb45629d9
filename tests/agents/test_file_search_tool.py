"""The `file_search` server tool, driven through its ToolFactory contract (tools/base.py) as the
response runner drives it, against vector stores a real gateway process indexed.

The tool runs in this test process on the gateway's own SQLite database; its query embeddings go to
the running gateway over HTTP with the project's key (see `GatewayOverHttp`), so they are metered as
the runner's would be.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import openai
import orjson
import pytest

from openfoundry.agents.embedding import Embedder
from openfoundry.agents.search import Searcher
from openfoundry.agents.tools.base import ToolContext
from openfoundry.agents.tools.file_search import FileSearchFactory, FileSearchTool
from openfoundry.config import AgentSettings
from openfoundry.errors import InvalidRequest
from openfoundry.gateway import Gateway
from openfoundry.store.db import Database
from openfoundry.store.vector_stores import VectorStores
from openfoundry.tenancy.auth import Principal
from tests.agents.files_support import project_client, store_with
from tests.harness import Server

LIBRARY = {
    "biology.txt": "Photosynthesis turns light, water and carbon dioxide into sugar inside the chloroplasts.",
    "history.txt": "The Roman republic became an empire when Augustus took power.",
    "botany.txt": "Leaves hold chloroplasts; photosynthesis happens there.",
}


@dataclass
class Served:
    body: bytes


class GatewayOverHttp:
    """`Gateway.call` for embeddings, made against the running gateway over HTTP."""

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self.client = client

    async def call(self, principal: Principal, kind: str, body: dict[str, Any], raw: bytes, started: float) -> Served:
        assert kind == "embeddings"
        answer = await self.client.embeddings.create(model=body["model"], input=body["input"])
        return Served(orjson.dumps(answer.model_dump()))


@dataclass
class Setup:
    factory: FileSearchFactory
    context: ToolContext
    store_id: str
    client: openai.OpenAI


@pytest.fixture
async def setup(server: Server) -> AsyncIterator[Setup]:
    client, project = project_client(server)
    store_id = store_with(client, LIBRARY)
    db = Database(f"sqlite:///{server.dir}/foundry.db")
    http = openai.AsyncOpenAI(base_url=client.base_url, api_key=client.api_key, max_retries=0)
    settings = AgentSettings(max_tool_output_bytes=2048)
    searcher = Searcher(VectorStores(db), Embedder(cast(Gateway, GatewayOverHttp(http)), settings))
    context = ToolContext(Principal(False, project, "key-" + secrets.token_hex(4)), settings)
    yield Setup(FileSearchFactory(searcher), context, store_id, client)
    await http.close()
    await db.close()


async def make(setup: Setup, **spec: Any) -> FileSearchTool:
    return await setup.factory({"type": "file_search", "vector_store_ids": [setup.store_id], **spec}, setup.context)


async def test_the_model_is_offered_one_search_function(setup: Setup) -> None:
    tool = await make(setup)
    assert tool.type == "file_search" and await tool.prepare() == []
    [function] = tool.functions()
    assert function["type"] == "function" and function["function"]["name"] == "file_search"
    assert function["function"]["parameters"]["required"] == ["query"]
    assert tool.owns("file_search") and not tool.owns("other") and not tool.approval_needed("file_search")


async def test_a_call_returns_results_the_text_the_model_reads_and_citations(setup: Setup) -> None:
    tool = await make(setup)
    result = await tool.call("file_search", '{"query": "photosynthesis chloroplasts"}', "fs_1")
    item = result.item
    assert (item["id"], item["type"], item["status"], item["queries"]) == (
        "fs_1",
        "file_search_call",
        "completed",
        ["photosynthesis chloroplasts"],
    )
    names = [r["filename"] for r in item["results"]]
    assert names[:2] in (["biology.txt", "botany.txt"], ["botany.txt", "biology.txt"])
    assert all(r["file_id"].startswith("file-") and 0 < r["score"] <= 1 and r["text"] for r in item["results"])
    assert "biology.txt" in result.output and "chloroplasts" in result.output
    cited = [(a["type"], a["filename"]) for a in result.annotations]
    assert cited[:2] == [("file_citation", names[0]), ("file_citation", names[1])]
    assert len({a["file_id"] for a in result.annotations}) == len(result.annotations)  # one per file


async def test_the_spec_limits_filters_and_output_size_are_honoured(setup: Setup) -> None:
    small = await make(setup, max_num_results=1)
    assert len((await small.call("file_search", '{"query": "photosynthesis"}', "fs_2")).item["results"]) == 1
    file_id = next(r.file_id for r in setup.client.vector_stores.search(setup.store_id, query="Augustus").data)
    setup.client.vector_stores.files.update(file_id, vector_store_id=setup.store_id, attributes={"era": "ancient"})
    ancient = await make(setup, filters={"type": "eq", "key": "era", "value": "ancient"})
    found = (await ancient.call("file_search", '{"query": "photosynthesis"}', "fs_3")).item["results"]
    assert [r["filename"] for r in found] == ["history.txt"]
    setup.context.settings = AgentSettings(max_tool_output_bytes=256)
    cut = await make(setup)
    assert len((await cut.call("file_search", '{"query": "photosynthesis"}', "fs_4")).output.encode()) <= 256


async def test_a_bad_call_is_a_failed_item_not_an_exception(setup: Setup) -> None:
    tool = await make(setup)
    for arguments in ("not json", '{"q": "x"}', '{"query": "  "}'):
        result = await tool.call("file_search", arguments, "fs_5")
        assert result.item["status"] == "failed" and result.output.startswith("file_search failed")
        assert result.annotations == []
    setup.client.vector_stores.delete(setup.store_id)
    gone = await tool.call("file_search", '{"query": "photosynthesis"}', "fs_6")
    assert gone.item["status"] == "failed" and "No vector store found" in gone.output


@pytest.mark.parametrize(
    "spec",
    [
        {"vector_store_ids": []},
        {"vector_store_ids": "vs_1"},
        {"max_num_results": 0},
        {"max_num_results": 51},
        {"filters": {"type": "near", "key": "a", "value": 1}},
        {"ranking_options": {"score_threshold": 5}},
        {"vector_store_ids": ["vs_unknown"]},
    ],
)
async def test_a_bad_tool_entry_is_a_400_on_tools(setup: Setup, spec: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await make(setup, **spec)
    assert refused.value.status == 400 and refused.value.param == "tools"


async def test_another_projects_store_cannot_be_searched(setup: Setup, server: Server) -> None:
    other, _ = project_client(server)
    theirs = store_with(other, {"x.txt": "photosynthesis in another project"})
    with pytest.raises(InvalidRequest) as refused:
        await setup.factory({"type": "file_search", "vector_store_ids": [theirs]}, setup.context)
    assert theirs in refused.value.message

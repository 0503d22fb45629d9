"""A vector store embedded by the local llama.cpp engine (the bundled Gemma 3 270M), which is the
default embedding deployment when no other is configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openfoundry.engines.models import bundled_model
from tests.agents.files_support import project_client, upload
from tests.engines.conftest import MODELS_DIR, wait_ready
from tests.harness import ADMIN_KEY, Server
from tests.metering.test_usage_api import wait_for_requests

GEMMA_WIDTH = 640


@pytest.fixture(scope="module")
def local() -> Iterator[Server]:
    bundled_model(MODELS_DIR, progress=False)
    config = {
        "server": {"admin_key": ADMIN_KEY},
        "providers": {"local": {"type": "llamacpp", "engine": {"models_dir": str(MODELS_DIR), "n_ctx": 512}}},
        "deployments": {"gemma": {"model": "google/gemma-3-270m", "backends": [{"provider": "local"}]}},
    }
    server = Server(config).start()
    wait_ready(server)
    yield server
    server.stop()


def test_the_local_engine_embeds_a_store_by_default(local: Server) -> None:
    client, project = project_client(local)
    store = client.vector_stores.create(
        name="local",
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}},
    )
    for name, text in (
        ("tides.txt", "The tide rises twice a day because the moon pulls on the oceans."),
        ("bread.txt", "Sourdough bread needs a starter, flour, water, salt and patience."),
    ):
        added = client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=upload(client, name, text))
        assert added.status == "completed", added.last_error
        assert added.usage_bytes >= GEMMA_WIDTH * 4  # one 640-wide float32 vector at least
    found = client.vector_stores.search(store.id, query="sourdough starter").data
    assert found[0].filename == "bread.txt" and "patience" in found[0].content[0].text
    assert wait_for_requests(local, 3, project=project, deployment="gemma")["prompt_tokens"] > 0

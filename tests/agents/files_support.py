"""What the files and vector store tests share: per-project SDK clients, uploads, and an embeddings
upstream whose vectors carry meaning (the shared OpenAI fake's are hashes of the text)."""

from __future__ import annotations

import math
import re
import secrets
import time
from typing import Any

import openai
from aiohttp import web

from tests.api.test_admin import call
from tests.fakes.server import new_app
from tests.harness import Server

SEMANTIC_KEY = "sk-semantic-upstream"
CONCEPTS = (
    {"car", "cars", "automobile", "automobiles", "vehicle", "vehicles", "sedan", "truck", "garage", "tyres"},
    {"dog", "dogs", "puppy", "puppies", "canine", "hound", "leash", "bark"},
    {"bake", "baking", "bread", "recipe", "recipes", "oven", "kitchen", "cuisine", "cooking", "flour"},
    {"ocean", "sea", "marine", "waves", "tide", "coral", "reef", "sailing"},
)


def project_client(server: Server, **project: Any) -> tuple[openai.OpenAI, str]:
    """An SDK client with a new project's key (the project gets a unique name, and `project`'s
    settings: limits, budget), and that name."""
    name = f"p-{secrets.token_hex(4)}"
    status, body = call(server, "POST", "/admin/projects", {"name": name, **project})
    assert status == 201, body
    status, key = call(server, "POST", "/admin/keys", {"project": name, "name": "files-test"})
    assert status == 201, key
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key["key"], max_retries=0), name


def upload(client: openai.OpenAI, name: str, text: str | bytes) -> str:
    content = text.encode() if isinstance(text, str) else text
    return client.files.create(file=(name, content), purpose="assistants").id


def concept_vector(text: str) -> list[float]:
    """One dimension per concept (counting its words) plus one for everything else."""
    words = re.findall(r"\w+", text.lower())
    raw = [float(sum(word in concept for word in words)) for concept in CONCEPTS]
    raw.append(0.1 + 0.01 * sum(not any(word in c for c in CONCEPTS) for word in words))
    norm = math.sqrt(sum(x * x for x in raw))
    return [x / norm for x in raw]


def semantic_upstream() -> web.Application:
    """An OpenAI-compatible /v1/embeddings whose vectors group words of the same concept."""

    async def embeddings(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SEMANTIC_KEY}":
            return web.json_response({"error": {"message": "bad key", "type": "invalid_request_error"}}, status=401)
        body: dict[str, Any] = await request.json()
        inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = [{"object": "embedding", "index": i, "embedding": concept_vector(text)} for i, text in enumerate(inputs)]
        tokens = sum(len(text.split()) for text in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response({"object": "list", "data": data, "model": body["model"], "usage": usage})

    app = new_app()
    app.router.add_post("/v1/embeddings", embeddings)
    return app


def indexed(client: openai.OpenAI, store_id: str, timeout: float = 30) -> Any:
    """The vector store once none of its files is still in progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = client.vector_stores.retrieve(store_id)
        if store.file_counts.in_progress == 0:
            return store
        time.sleep(0.05)
    raise AssertionError(f"vector store {store_id} still has files in progress after {timeout} s")


def store_with(client: openai.OpenAI, files: dict[str, str], **extra: Any) -> str:
    """A vector store holding the given files (name -> text), indexed."""
    ids = [upload(client, name, text) for name, text in files.items()]
    store = client.vector_stores.create(name="test store", file_ids=ids, **extra)
    assert indexed(client, store.id).file_counts.completed == len(files)
    return store.id

"""Adding a file to a vector store: extract its text, chunk it, embed the chunks, store them.

Each file is processed by a background task of the process that accepted it; its vector store file
goes `in_progress` -> `completed` or `failed` (with `last_error`), never an exception to a client.
"""

from __future__ import annotations

import asyncio
import logging
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any

from openfoundry.agents.chunking import Chunking, split
from openfoundry.agents.embedding import Embedder
from openfoundry.errors import FoundryError, NotFound
from openfoundry.store.files import FileStore
from openfoundry.store.vector_stores import VectorStores
from openfoundry.tenancy.auth import Principal

log = logging.getLogger("openfoundry.agents")

TEXT_SUFFIXES = frozenset(
    {
        ".txt",
        ".text",
        ".md",
        ".markdown",
        ".rst",
        ".json",
        ".jsonl",
        ".csv",
        ".tsv",
        ".html",
        ".htm",
        ".xml",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".log",
        ".tex",
        ".sql",
        ".py",
        ".js",
        ".mjs",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".kt",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".go",
        ".rb",
        ".rs",
        ".php",
        ".sh",
        ".css",
        ".scss",
        ".swift",
        ".r",
        ".m",
        ".scala",
        ".lua",
        ".pl",
    }
)
_MARKUP = frozenset({".html", ".htm"})


class FileError(Exception):
    """Why a file cannot be indexed; `code` is a vector store file's `last_error.code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def extract_text(filename: str, content: bytes) -> str:
    """The text of a text-like file (UTF-8; HTML without its markup)."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix and suffix not in TEXT_SUFFIXES:
        raise FileError(
            "unsupported_file",
            f"files of type {suffix!r} cannot be indexed here; supported are text files "
            f"({', '.join(sorted(TEXT_SUFFIXES))})",
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError("invalid_file", f"the file is not UTF-8 text (byte {exc.start} is not valid)") from exc
    if "\x00" in text:
        raise FileError("unsupported_file", "the file holds binary data, not text")
    if suffix in _MARKUP:
        text = _html_text(text)
    if not text.strip():
        raise FileError("invalid_file", "the file has no text to index")
    return text


class _Stopped(Exception):
    """The file was removed from its store, or its batch cancelled, while it was being processed."""


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _html_text(markup: str) -> str:
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def chunks_of(filename: str, content: bytes, chunking: Chunking) -> list[str]:
    return split(extract_text(filename, content), chunking)


class Ingestor:
    """Runs the background task of each file added in this process."""

    def __init__(self, files: FileStore, stores: VectorStores, embedder: Embedder) -> None:
        self.files = files
        self.stores = stores
        self.embedder = embedder
        self._tasks: set[asyncio.Task[None]] = set()

    async def deployment_for(self, principal: Principal, store: dict[str, Any]) -> str:
        """The deployment the store embeds with, chosen (for good) when its first file comes."""
        if store["embedding_deployment"]:
            return str(store["embedding_deployment"])
        chosen = self.embedder.default_deployment(principal)
        return await self.stores.claim_embedding_deployment(store["id"], chosen)

    async def attach(
        self,
        principal: Principal,
        store: dict[str, Any],
        file_id: str,
        attributes: dict[str, Any] | None,
        chunking: Chunking,
        batch_id: str | None = None,
    ) -> dict[str, Any]:
        """Add one of the project's files to the store and start indexing it; the vector store file row.
        A file already in the store is left as it is."""
        project = principal.project or ""
        if await self.files.get(project, file_id) is None:
            raise NotFound(f"No file found with id '{file_id}'", param="file_id")
        deployment = await self.deployment_for(principal, store)
        row, created = await self.stores.add_file(
            project, store["id"], file_id, attributes, chunking.to_openai(), batch_id
        )
        if created:
            task = asyncio.create_task(self._ingest(principal, store["id"], file_id, deployment, chunking))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return row

    async def close(self) -> None:
        """Stop the files still being processed (they are marked failed: add them again)."""
        for task in self._tasks:
            task.cancel()
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _ingest(
        self, principal: Principal, store_id: str, file_id: str, deployment: str, chunking: Chunking
    ) -> None:
        project = principal.project or ""
        try:
            found = await self.files.content(project, file_id)
            if found is None:
                raise FileError("invalid_file", "the file was deleted or has expired")
            texts = await asyncio.to_thread(chunks_of, found[0], found[1], chunking)

            async def still_wanted() -> None:
                if not await self.stores.heartbeat(store_id, file_id):
                    raise _Stopped

            vectors = await self.embedder.embed(principal, deployment, texts, still_wanted, patient=True)
            await self.stores.complete(store_id, file_id, project, texts, [row.tobytes() for row in vectors])
        except _Stopped:
            return
        except FileError as exc:
            await self.stores.fail(store_id, file_id, exc.code, exc.message)
        except FoundryError as exc:
            message = f"embedding with deployment {deployment!r} failed: {exc.message}"
            await self.stores.fail(store_id, file_id, "server_error", message)
        except asyncio.CancelledError:
            await self.stores.fail(store_id, file_id, "server_error", "the server stopped while processing the file")
            raise
        except Exception:
            log.exception("indexing file %s into vector store %s failed", file_id, store_id)
            await self.stores.fail(store_id, file_id, "server_error", "internal error; the server log has the details")

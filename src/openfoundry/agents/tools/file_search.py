"""The `file_search` tool: the model searches the request's vector stores of the caller's project.

The model sees one function, `file_search(query)`; each call becomes a `file_search_call` item with
the results, the found chunks (with their file names) as what the model reads, and a `file_citation`
annotation per file found for the runner to put on the next assistant message.
"""

from __future__ import annotations

from typing import Any

import orjson

from openfoundry.agents.filters import Filter, parse_filter
from openfoundry.agents.search import Hit, Ranking, Searcher, parse_ranking
from openfoundry.agents.tools.base import ToolContext, ToolResult
from openfoundry.errors import FoundryError, InvalidRequest

FUNCTION = "file_search"
DEFAULT_RESULTS = 10


class FileSearchTool:
    type = "file_search"

    def __init__(
        self,
        context: ToolContext,
        searcher: Searcher,
        stores: list[dict[str, Any]],
        limit: int,
        where: Filter | None,
        ranking: Ranking,
    ) -> None:
        self.context = context
        self.searcher = searcher
        self.stores = stores
        self.limit = limit
        self.where = where
        self.ranking = ranking

    async def prepare(self) -> list[dict[str, Any]]:
        return []

    def functions(self) -> list[dict[str, Any]]:
        names = ", ".join(repr(row["name"]) for row in self.stores if row["name"])
        description = "Search the user's uploaded files for passages relevant to a query" + (
            f" (vector stores {names})." if names else "."
        )
        parameters = {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look for, in a few words."}},
            "required": ["query"],
            "additionalProperties": False,
        }
        return [
            {"type": "function", "function": {"name": FUNCTION, "description": description, "parameters": parameters}}
        ]

    def owns(self, name: str) -> bool:
        return name == FUNCTION

    def approval_needed(self, name: str) -> bool:
        return False

    def approval_item(self, name: str, arguments: str, item_id: str) -> dict[str, Any]:
        raise NotImplementedError("file_search calls need no approval")

    async def call(self, name: str, arguments: str, item_id: str) -> ToolResult:
        item: dict[str, Any] = {"id": item_id, "type": "file_search_call", "queries": [], "status": "failed"}
        try:
            query = _query(arguments)
            item["queries"] = [query]
            stores = await self.searcher.usable(self.context.project, [row["id"] for row in self.stores], "tools")
            hits = await self.searcher.search(
                self.context.principal, stores, [query], self.where, self.limit, self.ranking
            )
        except FoundryError as exc:
            item["results"] = None
            return ToolResult(item, self._cut(f"file_search failed: {exc.message}"))
        item |= {"status": "completed", "results": [_result(hit) for hit in hits]}
        return ToolResult(item, self._cut(_readable(query, hits)), _citations(hits))

    def _cut(self, text: str) -> str:
        limit = self.context.settings.max_tool_output_bytes
        encoded = text.encode()
        return text if len(encoded) <= limit else encoded[:limit].decode(errors="ignore")


def _query(arguments: str) -> str:
    try:
        parsed = orjson.loads(arguments or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the arguments are not JSON: {exc}") from exc
    query = parsed.get("query") if isinstance(parsed, dict) else None
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequest("the arguments need a non-empty string 'query'")
    return query


def _result(hit: Hit) -> dict[str, Any]:
    return {
        "file_id": hit.file_id,
        "filename": hit.filename,
        "score": hit.score,
        "text": hit.text,
        "attributes": hit.attributes,
    }


def _readable(query: str, hits: list[Hit]) -> str:
    if not hits:
        return f"No passages in the files match {query!r}."
    parts = [f"Found {len(hits)} passage(s) for {query!r}:"]
    for number, hit in enumerate(hits, 1):
        parts.append(f"[{number}] {hit.filename} (file {hit.file_id}, score {hit.score:.3f}):\n{hit.text}")
    return "\n\n".join(parts)


def _citations(hits: list[Hit]) -> list[dict[str, Any]]:
    """One `file_citation` per file found, best first; `index` 0 until the runner places it in the text."""
    seen: dict[str, dict[str, Any]] = {}
    for hit in hits:
        seen.setdefault(
            hit.file_id, {"type": "file_citation", "file_id": hit.file_id, "filename": hit.filename, "index": 0}
        )
    return list(seen.values())


class FileSearchFactory:
    """Makes the `file_search` tool of one request (see tools/base.py's ToolFactory)."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher

    async def __call__(self, spec: dict[str, Any], context: ToolContext) -> FileSearchTool:
        ids = spec.get("vector_store_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise InvalidRequest("file_search needs 'vector_store_ids': a non-empty array of ids", param="tools")
        limit = spec.get("max_num_results", DEFAULT_RESULTS)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 50:
            raise InvalidRequest("file_search 'max_num_results' must be an integer from 1 to 50", param="tools")
        raw_filter = spec.get("filters")
        try:
            where = None if raw_filter is None else parse_filter(raw_filter, "tools.filters")
            ranking = parse_ranking(spec.get("ranking_options"), "tools.ranking_options")
            stores = await self.searcher.usable(context.project, list(dict.fromkeys(ids)), "tools")
        except FoundryError as exc:
            raise InvalidRequest(f"file_search: {exc.message}", param="tools", code=exc.code) from exc
        return FileSearchTool(context, self.searcher, stores, limit, where, ranking)

"""Hybrid search over vector stores: BM25 over the chunks' words plus cosine similarity of embeddings,
combined by weighted reciprocal rank fusion (what OpenAI's `ranking_options.hybrid_search` weights).

A result's score is its fused score divided by the best one possible (first in both rankings), so it
lies in (0, 1] and `score_threshold` reads as OpenAI documents it. Each process keeps the stores it
searched in memory and reloads one when its `version` in the database moved.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from openfoundry.agents.embedding import Embedder
from openfoundry.agents.filters import Filter
from openfoundry.errors import InvalidRequest, NotFound
from openfoundry.store.files import now
from openfoundry.store.usage import utc
from openfoundry.store.vector_stores import StoredChunk, VectorStores, expires_at
from openfoundry.tenancy.auth import Principal

RRF_K = 60
BM25_K1 = 1.2
BM25_B = 0.75
CACHED_STORES = 32
_WORD = re.compile(r"\w+")
_RANKERS = ("none", "auto", "default-2024-11-15")
_TOUCH_EVERY = dt.timedelta(minutes=1)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True, slots=True)
class Ranking:
    embedding_weight: float = 1.0
    text_weight: float = 1.0
    score_threshold: float = 0.0


@dataclass(frozen=True, slots=True)
class Hit:
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any]


def parse_ranking(raw: Any, param: str = "ranking_options") -> Ranking:
    if raw is None:
        return Ranking()
    if not isinstance(raw, dict):
        raise InvalidRequest(f"'{param}' must be an object", param=param)
    if raw.get("ranker") is not None and raw["ranker"] not in _RANKERS:
        raise InvalidRequest(f"'{param}.ranker' must be one of {', '.join(_RANKERS)}", param=f"{param}.ranker")
    threshold = raw.get("score_threshold", 0.0)
    if not _number(threshold) or not 0 <= threshold <= 1:
        raise InvalidRequest(
            f"'{param}.score_threshold' must be a number from 0 to 1", param=f"{param}.score_threshold"
        )
    hybrid = raw.get("hybrid_search")
    if hybrid is None:
        return Ranking(score_threshold=float(threshold))
    where = f"{param}.hybrid_search"
    if not isinstance(hybrid, dict):
        raise InvalidRequest(f"'{where}' must be an object", param=where)
    embedding, text = hybrid.get("embedding_weight"), hybrid.get("text_weight")
    if not (_number(embedding) and _number(text) and embedding >= 0 and text >= 0 and embedding + text > 0):
        raise InvalidRequest(
            f"'{where}' needs embedding_weight and text_weight: numbers of at least 0, not both 0", param=where
        )
    return Ranking(float(embedding), float(text), float(threshold))


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Index:
    """One store's chunks, ready to score: a matrix of unit vectors and BM25 postings."""

    def __init__(self, chunks: Sequence[StoredChunk]) -> None:
        self.chunks = list(chunks)
        widths = {len(chunk.embedding) for chunk in self.chunks}
        if len(widths) == 1 and 0 not in widths:
            self.vectors = np.frombuffer(b"".join(c.embedding for c in self.chunks), dtype=np.float32)
            self.vectors = self.vectors.reshape(len(self.chunks), -1)
        else:  # empty, or vectors of mixed models: rank by text alone
            self.vectors = np.zeros((len(self.chunks), 0), dtype=np.float32)
        postings: dict[str, tuple[list[int], list[int]]] = {}
        lengths = []
        for position, chunk in enumerate(self.chunks):
            counts = Counter(words(chunk.text))
            lengths.append(sum(counts.values()))
            for word, count in counts.items():
                rows, tfs = postings.setdefault(word, ([], []))
                rows.append(position)
                tfs.append(count)
        self.postings = {
            word: (np.array(rows), np.array(tfs, dtype=np.float64)) for word, (rows, tfs) in postings.items()
        }
        self.lengths = np.array(lengths, dtype=np.float64)
        self.average_length = float(self.lengths.mean()) if lengths else 0.0

    def __len__(self) -> int:
        return len(self.chunks)

    def text_scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 of every chunk for the query's words (0 where none occurs)."""
        scores = np.zeros(len(self.chunks))
        if not self.chunks:
            return scores
        norm = BM25_K1 * (1 - BM25_B + BM25_B * self.lengths / max(self.average_length, 1e-9))
        for term in set(terms):
            found = self.postings.get(term)
            if found is None:
                continue
            rows, tfs = found
            idf = math.log(1 + (len(self.chunks) - len(rows) + 0.5) / (len(rows) + 0.5))
            scores[rows] += idf * tfs * (BM25_K1 + 1) / (tfs + norm[rows])
        return scores

    def vector_scores(self, query: np.ndarray | None) -> np.ndarray:
        """Cosine similarity of every chunk to the query vector (NaN where there is nothing to compare)."""
        if query is None or self.vectors.shape[1] != len(query):
            return np.full(len(self.chunks), np.nan)
        result: np.ndarray = self.vectors @ query
        return result


def reciprocal_ranks(values: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """1 / (RRF_K + rank) for the eligible entries ranked by value, highest first; 0 elsewhere."""
    positions = np.flatnonzero(eligible)
    order = positions[np.argsort(-values[positions], kind="stable")]
    ranks = np.zeros(len(values))
    ranks[order] = 1.0 / (RRF_K + np.arange(1, len(order) + 1))
    return ranks


def fuse(text: np.ndarray, vector: np.ndarray, allowed: np.ndarray, ranking: Ranking) -> np.ndarray:
    """Each chunk's score in [0, 1]: weighted reciprocal ranks over the best possible (first in the
    text ranking and, where there are vectors to compare, in the vector ranking)."""
    comparable = allowed & ~np.isnan(vector)
    fused = ranking.text_weight * reciprocal_ranks(text, allowed & (text > 0))
    fused += ranking.embedding_weight * reciprocal_ranks(vector, comparable)
    best = (ranking.text_weight + (ranking.embedding_weight if comparable.any() else 0.0)) / (RRF_K + 1)
    result: np.ndarray = fused / best if best else fused
    return result


class Searcher:
    def __init__(self, stores: VectorStores, embedder: Embedder) -> None:
        self.stores = stores
        self.embedder = embedder
        self._cache: OrderedDict[str, tuple[int, Index]] = OrderedDict()

    async def usable(self, project: str, store_ids: Sequence[str], param: str) -> list[dict[str, Any]]:
        """The stores' rows; another project's or an unknown id is 404, an expired store 400."""
        rows = []
        for store_id in store_ids:
            row = await self.stores.get(project, store_id)
            if row is None:
                raise NotFound(f"No vector store found with id '{store_id}'", param=param)
            expiry = expires_at(row)
            if expiry is not None and expiry <= now():
                raise InvalidRequest(f"vector store '{store_id}' has expired", param=param, code="vector_store_expired")
            rows.append(row)
        return rows

    async def search(
        self,
        principal: Principal,
        rows: Sequence[dict[str, Any]],
        queries: Sequence[str],
        where: Filter | None,
        limit: int,
        ranking: Ranking,
    ) -> list[Hit]:
        """The best `limit` chunks of the stores for any of the queries."""
        indexes = [await self._index(row) for row in rows]
        await self._touch(rows)
        chunks = [chunk for index in indexes for chunk in index.chunks]
        if not chunks:
            return []
        allowed = np.array([where is None or where(chunk.attributes) for chunk in chunks], dtype=bool)
        vectors = await self._query_vectors(principal, rows, indexes, queries) if ranking.embedding_weight else {}
        best = np.zeros(len(chunks))
        for number, query in enumerate(queries):
            terms = words(query)
            text = np.concatenate([index.text_scores(terms) for index in indexes])
            vector = np.concatenate(
                [
                    index.vector_scores(vectors.get(row["embedding_deployment"], {}).get(number))
                    for row, index in zip(rows, indexes, strict=True)
                ]
            )
            best = np.maximum(best, fuse(text, vector, allowed, ranking))
        order = np.argsort(-best, kind="stable")[:limit]
        chosen = [i for i in order if best[i] > 0 and best[i] >= ranking.score_threshold]
        return [
            Hit(chunks[i].file_id, chunks[i].filename, round(float(best[i]), 6), chunks[i].text, chunks[i].attributes)
            for i in chosen
        ]

    async def _query_vectors(
        self, principal: Principal, rows: Sequence[dict[str, Any]], indexes: list[Index], queries: Sequence[str]
    ) -> dict[str, dict[int, np.ndarray]]:
        """The queries embedded by each deployment the searched stores use, by query number."""
        deployments = {row["embedding_deployment"] for row, index in zip(rows, indexes, strict=True) if len(index)}
        found: dict[str, dict[int, np.ndarray]] = {}
        for deployment in sorted(d for d in deployments if d):
            vectors = await self.embedder.embed(principal, deployment, list(queries))
            found[deployment] = dict(enumerate(vectors))
        return found

    async def _index(self, row: dict[str, Any]) -> Index:
        cached = self._cache.get(row["id"])
        if cached is not None and cached[0] == row["version"]:
            self._cache.move_to_end(row["id"])
            return cached[1]
        index = await asyncio.to_thread(Index, await self.stores.chunks(row["id"]))
        self._cache[row["id"]] = (row["version"], index)
        while len(self._cache) > CACHED_STORES:
            self._cache.popitem(last=False)
        return index

    async def _touch(self, rows: Sequence[dict[str, Any]]) -> None:
        stale = [row["id"] for row in rows if utc(row["last_active_at"]) < now() - _TOUCH_EVERY]
        if stale:
            await self.stores.touch(stale)

"""Embeddings for vector stores, made through the gateway so they are limited and metered to the
project that asked (a file's chunks to whoever added the file, a query to whoever searched)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import orjson

from openfoundry.config import AgentSettings
from openfoundry.errors import InvalidRequest, RateLimited, UpstreamError
from openfoundry.gateway import Gateway
from openfoundry.tenancy.auth import Principal

BATCH = 64
"""Texts per embeddings call."""
PATIENCE = 5
"""Times a background embedding waits out a rate limit (its Retry-After, up to a minute) before failing."""
_LONGEST_WAIT = 60.0

Progress = Callable[[], Awaitable[None]]


class Embedder:
    def __init__(self, gateway: Gateway, settings: AgentSettings) -> None:
        self.gateway = gateway
        self.settings = settings

    def default_deployment(self, principal: Principal) -> str:
        """The deployment a new vector store embeds with: the configured one; else the first the caller
        may use that a local engine serves (the embedded llama.cpp engine embeds with any model); else
        the first whose catalog card is an embedding model."""
        configured = self.settings.embedding_deployment
        if configured:
            if configured not in self.gateway.deployments:
                raise InvalidRequest(
                    f"agents.embedding_deployment is {configured!r}, which is not a deployment",
                    code="no_embedding_deployment",
                )
            return configured
        usable = [d for d in self.gateway.deployments if principal.may_use(d.name)]
        for deployment in usable:
            if self.gateway.native(deployment, "llamacpp"):
                return deployment.name
        for deployment in usable:
            if deployment.card.kind == "embeddings":
                return deployment.name
        raise InvalidRequest(
            "no deployment can embed files: deploy an embedding model or the local engine, or set "
            "agents.embedding_deployment",
            code="no_embedding_deployment",
        )

    async def embed(
        self,
        principal: Principal,
        deployment: str,
        texts: Sequence[str],
        progress: Progress | None = None,
        patient: bool = False,
    ) -> np.ndarray:
        """Unit-length float32 vectors for `texts`, one row each, embedded in batches. A `patient` caller
        (background indexing) waits out the caller's rate limits instead of failing at once."""
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), BATCH):
            rows.append(await self._batch(principal, deployment, list(texts[start : start + BATCH]), patient))
            if progress is not None:
                await progress()
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        widths = {batch.shape[1] for batch in rows}
        if len(widths) != 1:
            raise UpstreamError(f"deployment {deployment!r} returned vectors of different lengths: {sorted(widths)}")
        return np.concatenate(rows)

    async def _batch(self, principal: Principal, deployment: str, texts: list[str], patient: bool) -> np.ndarray:
        body = {"model": deployment, "input": texts}
        raw = orjson.dumps(body)
        for attempt in itertools.count():
            try:
                outcome = await self.gateway.call(principal, "embeddings", body, raw, time.perf_counter())
                break
            except RateLimited as exc:
                wait = _retry_after(exc)
                if not patient or attempt >= PATIENCE or wait is None or exc.code == "budget_exceeded":
                    raise
                await asyncio.sleep(wait)
        try:
            data = sorted(orjson.loads(outcome.body or b"")["data"], key=lambda item: item["index"])
            vectors = np.array([item["embedding"] for item in data], dtype=np.float32)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"deployment {deployment!r} returned no usable embeddings") from exc
        if vectors.ndim != 2 or len(vectors) != len(texts) or vectors.shape[1] == 0:
            raise UpstreamError(f"deployment {deployment!r} returned {len(vectors)} vectors for {len(texts)} texts")
        return normalized(vectors)


def _retry_after(exc: RateLimited) -> float | None:
    """Seconds the limiter asks to wait, if it is short enough to wait here."""
    try:
        wait = float(exc.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return wait if 0 <= wait <= _LONGEST_WAIT else None


def normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)

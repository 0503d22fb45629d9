"""OpenAI embeddings <-> Gemini batchEmbedContents."""

from __future__ import annotations

import base64
import struct
from typing import Any

from openfoundry.errors import InvalidRequest, UpstreamError
from openfoundry.providers.gemini.request import model_path


def embeddings_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    extra = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") is not None else {}
    name = model_path(model)
    return {"requests": [{"model": name, "content": {"parts": [{"text": text}]}, **extra} for text in _inputs(body)]}


def _inputs(body: dict[str, Any]) -> list[str]:
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise InvalidRequest(
            "input must be a string or a non-empty array of strings; Gemini takes no token arrays", param="input"
        )
    return texts


def embeddings_response(payload: dict[str, Any], body: dict[str, Any], model: str) -> dict[str, Any]:
    texts = _inputs(body)
    vectors = [item.get("values") or [] for item in payload.get("embeddings") or [] if isinstance(item, dict)]
    if len(vectors) != len(texts):
        raise UpstreamError(f"Gemini answered {len(vectors)} embeddings for {len(texts)} inputs")
    packed = body.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "index": index, "embedding": _base64(vector) if packed else vector}
        for index, vector in enumerate(vectors)
    ]
    # Gemini reports no token counts for embeddings: one token per whitespace-separated word is our estimate.
    tokens = sum(len(text.split()) for text in texts)
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()

"""Splitting a file's text into overlapping chunks, sized in tokens as OpenAI's vector stores do.

No tokenizer files can be loaded here (the machines are offline), so tokens are approximated: a run of
up to six ASCII letters is one token, a run of up to three digits is one (cl100k groups digits so too),
and every other non-space character is one. Common English words are then one token, long ones two or
three, and punctuation its own, which lands near cl100k's count for prose (about 1.3 tokens a word);
CJK text counts a token per character, as real tokenizers roughly do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from openfoundry.errors import InvalidRequest

_TOKEN = re.compile(r"[A-Za-z]{1,6}|[0-9]{1,3}|\S")
AUTO_SIZE = 800
AUTO_OVERLAP = 400
MIN_SIZE = 100
MAX_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Chunking:
    max_chunk_size_tokens: int = AUTO_SIZE
    chunk_overlap_tokens: int = AUTO_OVERLAP

    def to_openai(self) -> dict[str, Any]:
        """As a vector store file reports it (`auto` is reported as the static sizes it stands for)."""
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": self.max_chunk_size_tokens,
                "chunk_overlap_tokens": self.chunk_overlap_tokens,
            },
        }


def parse_chunking(raw: Any, param: str = "chunking_strategy") -> Chunking:
    """A request's `chunking_strategy` (`{"type": "auto"}`, `{"type": "static", "static": {...}}` or
    absent), checked with OpenAI's rules; InvalidRequest says what is wrong."""
    if raw is None:
        return Chunking()
    if not isinstance(raw, dict) or raw.get("type") not in ("auto", "static"):
        raise InvalidRequest(f'\'{param}\' must be {{"type": "auto"}} or {{"type": "static", ...}}', param=param)
    if raw["type"] == "auto":
        return Chunking()
    static = raw.get("static")
    if not isinstance(static, dict):
        raise InvalidRequest(f"'{param}.static' must be an object", param=f"{param}.static")
    size = static.get("max_chunk_size_tokens")
    overlap = static.get("chunk_overlap_tokens")
    if not _is_int(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise InvalidRequest(
            f"'{param}.static.max_chunk_size_tokens' must be an integer from {MIN_SIZE} to {MAX_SIZE}",
            param=f"{param}.static.max_chunk_size_tokens",
        )
    if not _is_int(overlap) or not 0 <= overlap <= size // 2:
        raise InvalidRequest(
            f"'{param}.static.chunk_overlap_tokens' must be an integer from 0 to half of max_chunk_size_tokens "
            f"({size // 2})",
            param=f"{param}.static.chunk_overlap_tokens",
        )
    return Chunking(size, overlap)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def count_tokens(text: str) -> int:
    """The approximate token count of a text (see the module's note)."""
    return sum(1 for _ in _TOKEN.finditer(text))


def split(text: str, chunking: Chunking) -> list[str]:
    """The text as chunks of at most `max_chunk_size_tokens` tokens, each starting `size - overlap`
    tokens after the previous one; the original characters (spacing included) are kept."""
    spans = [match.span() for match in _TOKEN.finditer(text)]
    size, step = chunking.max_chunk_size_tokens, chunking.max_chunk_size_tokens - chunking.chunk_overlap_tokens
    chunks = []
    for first in range(0, len(spans), step):
        last = min(first + size, len(spans)) - 1
        chunks.append(text[spans[first][0] : spans[last][1]])
        if last == len(spans) - 1:
            break
    return chunks

"""The Provider protocol: what the gateway asks of every upstream, whatever its wire protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Kind = Literal["chat", "completions", "embeddings", "messages"]
"""`messages`: an Anthropic Messages request, forwarded natively to hosts that speak it."""


@dataclass(slots=True)
class Usage:
    """Token counts in OpenAI's sense: completion_tokens includes reasoning tokens."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def to_openai(self) -> dict[str, Any]:
        """The usage object of an OpenAI chat completion."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    def update(self, other: Usage) -> None:
        """Take another report's counts (upstreams report cumulative usage)."""
        self.prompt_tokens = other.prompt_tokens
        self.completion_tokens = other.completion_tokens
        self.cached_tokens = other.cached_tokens
        self.reasoning_tokens = other.reasoning_tokens


@dataclass(slots=True)
class Call:
    """One request for one backend, in the canonical (OpenAI) shape."""

    kind: Kind
    body: dict[str, Any]
    """The client's parsed request."""
    raw: bytes
    """The client's request bytes, forwarded as they are where the upstream speaks OpenAI."""
    upstream_model: str
    stream: bool = False
    caller: str = ""
    """Who asks (the project), for hosts that share their capacity fairly between callers (engines)."""

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and bool(options.get("include_usage"))


@dataclass(slots=True)
class Reply:
    """A whole answer: OpenAI-shaped JSON bytes and the usage read from it."""

    body: bytes
    usage: Usage | None = None


class Chunks(Protocol):
    """An async iterator of bytes that can be closed early (an async generator is one)."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Stream:
    """A streamed answer: SSE bytes of `chat.completion.chunk` (or completion) events ending in [DONE].

    The producer fills `usage` as the upstream reports it; closing `chunks` releases the upstream.
    """

    chunks: Chunks
    usage: Usage = field(default_factory=Usage)


class Provider(Protocol):
    """A named upstream host speaking one wire protocol."""

    name: str
    type: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def complete(self, call: Call) -> Reply:
        """Answer a non-streaming call, or raise a FoundryError."""
        ...

    async def stream(self, call: Call) -> Stream:
        """Open a streamed call; errors before the first byte are raised here."""
        ...

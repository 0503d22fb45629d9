"""What the mcp and openapi tools share: the function names they offer, how they read the model's
arguments and the size of their output.

A server tool's operation is offered to the model as `{prefix}__{name}` (the MCP server_label or the
connector name, then the tool or operation), so names stay unique across a request's tools. Characters
a function name may not hold become `_`; a name longer than 64 characters keeps its start and ends in a
hash of the whole, so it stays unique.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

import orjson

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")
MAX_NAME = 64


def function_name(prefix: str, name: str) -> str:
    whole = f"{prefix}__{name}"
    safe = _NOT_ALLOWED.sub("_", whole)
    if safe == whole and len(safe) <= MAX_NAME:
        return safe
    digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
    return f"{safe[: MAX_NAME - len(digest) - 1]}_{digest}"


def call_arguments(text: str) -> dict[str, Any]:
    """The model's arguments (JSON text) as an object; ValueError saying what is wrong otherwise."""
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the arguments are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("the arguments must be a JSON object")
    return value


def cut_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (at a character boundary), marked when cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    note = f"\n[cut: the output passed the limit of {limit} bytes]"
    room = max(limit - len(note.encode()), 0)
    return encoded[:room].decode(errors="ignore") + note


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"

"""The deterministic "model" behind every fake upstream.

Each fake turns its provider's wire format into a `Prompt`, asks `answer()`, and writes the `Answer`
back in that provider's format, so the same conversation gives the same answer through every protocol.
Rules: a tool is called when tools are offered and the last turn is the user's; after a tool result the
model reports it; a JSON schema is answered with an object built from the schema; otherwise it echoes.
Tokens are whitespace-separated words.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Turn:
    role: str  # system | user | assistant | tool
    text: str = ""
    images: list[str] = field(default_factory=list)  # media types (or "url")
    tool_name: str | None = None  # for tool results: the tool that produced it


@dataclass
class Tool:
    name: str
    parameters: dict[str, Any]


@dataclass
class Prompt:
    turns: list[Turn]
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str | None = None  # auto | none | required | <tool name>
    schema: dict[str, Any] | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    reasoning: bool = False


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Answer:
    text: str
    tool_calls: list[ToolCall]
    finish: str  # stop | length | tool_calls
    reasoning: str | None
    prompt_tokens: int
    completion_tokens: int
    stop_sequence: str | None = None

    def words(self) -> list[str]:
        """The text as stream pieces: each word with its leading space."""
        parts = self.text.split(" ")
        return [parts[0]] + [" " + part for part in parts[1:]] if self.text else []


def count(text: str) -> int:
    return len(text.split())


def answer(prompt: Prompt) -> Answer:
    prompt_tokens = sum(count(turn.text) + 85 * len(turn.images) for turn in prompt.turns)
    prompt_tokens += sum(count(json.dumps(tool.parameters)) + 1 for tool in prompt.tools)
    last = prompt.turns[-1] if prompt.turns else Turn("user")
    user_text = next((t.text for t in reversed(prompt.turns) if t.role == "user"), "")
    reasoning = f"The user wrote {count(user_text)} words." if prompt.reasoning else None
    reasoning_tokens = count(reasoning) if reasoning else 0

    chosen = _tool_to_call(prompt, last)
    if chosen is not None:
        arguments = _value(chosen.parameters, user_text)
        digest = hashlib.sha1(f"{chosen.name}:{user_text}".encode()).hexdigest()[:12]
        call = ToolCall(f"call_{digest}", chosen.name, arguments)
        tokens = count(json.dumps(arguments)) + reasoning_tokens
        return Answer("", [call], "tool_calls", reasoning, prompt_tokens, tokens)

    if last.role == "tool":
        text = f"The {last.tool_name or 'tool'} tool returned: {last.text}"
    elif prompt.schema is not None:
        text = json.dumps(_value(prompt.schema, user_text))
    else:
        text = "You said: " + user_text
        if any(t.images for t in prompt.turns):
            kinds = [kind for t in prompt.turns for kind in t.images]
            text += f" [saw {len(kinds)} image(s): {', '.join(kinds)}]"

    finish, stop_sequence = "stop", None
    for stop in prompt.stop:
        if stop and stop in text:
            text, stop_sequence = text[: text.index(stop)], stop
    words = text.split(" ")
    if prompt.max_tokens is not None and len(words) > prompt.max_tokens:
        text, finish, stop_sequence = " ".join(words[: prompt.max_tokens]), "length", None
    return Answer(text, [], finish, reasoning, prompt_tokens, count(text) + reasoning_tokens, stop_sequence)


def _tool_to_call(prompt: Prompt, last: Turn) -> Tool | None:
    if not prompt.tools or last.role != "user" or prompt.tool_choice == "none":
        return None
    if prompt.tool_choice not in (None, "auto", "required"):
        return next((t for t in prompt.tools if t.name == prompt.tool_choice), None)
    return prompt.tools[0]


def _value(schema: dict[str, Any], text: str) -> Any:
    """A value that satisfies a JSON schema, filled from the user's last words where a string fits."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _value(sub, text) for name, sub in props.items()}
    if kind == "array":
        return [_value(schema.get("items", {"type": "string"}), text)]
    if kind == "integer":
        return len(text.split())
    if kind == "number":
        return float(len(text.split()))
    if kind == "boolean":
        return True
    words = re.findall(r"[A-Za-z0-9_-]+", text)
    return words[-1] if words else ""

"""Anthropic's Messages API, translated both ways to and from OpenAI chat completions.

Wire format from Anthropic's API reference (Messages, streaming Messages, errors, extended thinking).
The translations (`request_body`, `response_body`, `StreamTranslator`, `translate_error`) are pure;
`AnthropicProvider` only moves bytes.
"""

from __future__ import annotations

from openfoundry.providers.anthropic.provider import API_VERSION, BASE_URL, AnthropicProvider
from openfoundry.providers.anthropic.request import (
    DEFAULT_MAX_TOKENS,
    JSON_TOOL,
    THINKING_BUDGETS,
    request_body,
    uses_json_tool,
)
from openfoundry.providers.anthropic.response import (
    ERROR_STATUS,
    FINISH_REASONS,
    finish_reason,
    openai_usage,
    response_body,
    translate_error,
    usage_from,
)
from openfoundry.providers.anthropic.stream import StreamTranslator

__all__ = [
    "API_VERSION",
    "BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "ERROR_STATUS",
    "FINISH_REASONS",
    "JSON_TOOL",
    "THINKING_BUDGETS",
    "AnthropicProvider",
    "StreamTranslator",
    "finish_reason",
    "openai_usage",
    "request_body",
    "response_body",
    "translate_error",
    "usage_from",
    "uses_json_tool",
]

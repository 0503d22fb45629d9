"""Google's Gemini API, translated both ways to and from OpenAI chat completions and embeddings.

Wire format from the Gemini API reference (generateContent, streamGenerateContent with alt=sse,
batchEmbedContents, thinking, function calling, structured output, errors). The translations
(`request_body`, `response_body`, `StreamTranslator`, `embeddings_request`, `embeddings_response`,
`translate_error`) are pure; `GeminiProvider` only moves bytes.
"""

from __future__ import annotations

from openfoundry.providers.gemini.embeddings import embeddings_request, embeddings_response
from openfoundry.providers.gemini.provider import BASE_URL, GeminiProvider
from openfoundry.providers.gemini.request import (
    IMAGE_TYPES,
    THINKING_BUDGETS,
    guess_image_type,
    model_path,
    request_body,
)
from openfoundry.providers.gemini.response import (
    FILTERED,
    empty_answer,
    finish_reason,
    new_call_id,
    openai_usage,
    response_body,
    tool_call,
    translate_error,
    usage_from,
)
from openfoundry.providers.gemini.stream import StreamTranslator

__all__ = [
    "BASE_URL",
    "FILTERED",
    "IMAGE_TYPES",
    "THINKING_BUDGETS",
    "GeminiProvider",
    "StreamTranslator",
    "embeddings_request",
    "embeddings_response",
    "empty_answer",
    "finish_reason",
    "guess_image_type",
    "model_path",
    "new_call_id",
    "openai_usage",
    "request_body",
    "response_body",
    "tool_call",
    "translate_error",
    "usage_from",
]

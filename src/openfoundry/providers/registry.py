"""Build the configured providers: provider type -> the module that speaks its wire protocol."""

from __future__ import annotations

import importlib
from typing import cast

from openfoundry.config import ConfigError, ProviderSettings
from openfoundry.providers.base import Provider

_OPENAI = "openai_compat:OpenAICompatible"
IMPLEMENTATIONS = {
    "openai": _OPENAI,
    "xai": _OPENAI,
    "mistral": _OPENAI,
    "deepseek": _OPENAI,
    "groq": _OPENAI,
    "openrouter": _OPENAI,
    "openai-compatible": _OPENAI,
    "anthropic": "anthropic:AnthropicProvider",
    "gemini": "gemini:GeminiProvider",
    "azure-ai": "azure:Azure",
    "azure-openai": "azure:Azure",
    "llamacpp": "openfoundry.engines.llamacpp:LlamaCppEngine",
    "vllm": "openfoundry.engines.supervised:SupervisedServer",
    "sglang": "openfoundry.engines.supervised:SupervisedServer",
}
"""Provider type -> "module:Class", the module relative to openfoundry.providers unless it is a full path."""


def build_provider(name: str, settings: ProviderSettings) -> Provider:
    target = IMPLEMENTATIONS.get(settings.type)
    if target is None:
        raise ConfigError(
            f"invalid configuration:\n  providers.{name}.type: {settings.type!r} is not available in this build"
        )
    module, _, cls = target.partition(":")
    path = module if module.startswith("openfoundry.") else f"openfoundry.providers.{module}"
    implementation = getattr(importlib.import_module(path), cls)
    try:
        return cast(Provider, implementation(name, settings))
    except ValueError as exc:
        raise ConfigError(f"invalid configuration:\n  {exc}") from exc

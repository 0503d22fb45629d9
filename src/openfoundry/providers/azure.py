"""Azure: the AI Foundry models endpoint (`azure-ai`) and Azure OpenAI deployment URLs (`azure-openai`).

Both speak OpenAI's body format, so they reuse the pass-through provider and only change the URL,
the `api-version` query parameter and the `api-key` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from openfoundry.config import ProviderSettings
from openfoundry.errors import InvalidRequest
from openfoundry.providers.base import Call
from openfoundry.providers.openai_compat import PATHS, OpenAICompatible

DEFAULT_API_VERSION = {"azure-ai": "2024-05-01-preview", "azure-openai": "2024-10-21"}


class Azure(OpenAICompatible):
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        if not settings.base_url:
            raise ValueError(f"providers.{name}.base_url: required for type {settings.type!r}")
        super().__init__(name, settings)
        self._params = {"api-version": settings.api_version or DEFAULT_API_VERSION[settings.type]}

    def auth_headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"api-key": key.get_secret_value()} if key else {}

    def params(self) -> Mapping[str, str]:
        return self._params

    def url(self, call: Call) -> str:
        if self.type == "azure-openai":
            return f"{self.base_url}/openai/deployments/{quote(call.upstream_model, safe='')}{PATHS[call.kind]}"
        if call.kind == "completions":
            raise InvalidRequest(
                "the Azure AI models endpoint has no text completions; use /v1/chat/completions",
                code="unsupported_operation",
            )
        return self.base_url + PATHS[call.kind]

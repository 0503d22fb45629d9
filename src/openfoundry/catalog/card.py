"""A model card: what a model is, what it can do, what it costs, and who hosts it."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openfoundry.config import ProviderType

Modality = Literal["text", "image", "audio", "video", "embedding"]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Modalities(Frozen):
    input: tuple[Modality, ...]
    output: tuple[Modality, ...]


class Capabilities(Frozen):
    tools: bool = False
    structured_output: bool = False
    reasoning: bool = False
    reasoning_effort: tuple[str, ...] = ()
    vision: bool = False
    streaming: bool = True
    embeddings: bool = False


class Pricing(Frozen):
    """USD per million tokens; None where the publisher documents no price."""

    input: float | None = None
    cached_input: float | None = None
    output: float | None = None


class ModelCard(Frozen):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*/[a-z0-9][a-z0-9._-]*$")
    name: str
    kind: Literal["chat", "embeddings", "image"] = "chat"
    description: str
    context_window: int = Field(gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    modalities: Modalities
    capabilities: Capabilities
    pricing: Pricing
    license: str
    release_date: dt.date | None = None
    hosts: dict[ProviderType, str] = Field(default_factory=dict)
    """Provider type -> the model's name in that provider's API."""
    notes: str | None = None

    @property
    def publisher(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def short_name(self) -> str:
        return self.id.split("/", 1)[1]

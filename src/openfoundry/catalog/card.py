"""A model card: what a model is, what it can do, what it costs, and who hosts it."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openfoundry.config import ProviderType

Modality = Literal["text", "image", "audio", "video", "embedding"]
Engine = Literal["vllm", "sglang", "llamacpp"]


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


class Recipe(Frozen):
    """How to serve open weights on one engine: what the card's notes say is documented, and what is estimated.

    Only data: nothing starts a server from it. For `vllm`/`sglang` it maps onto a provider's `launch:`
    block (see `ModelCard.launch_block`); the supervisor adds the model, host, port, served name and
    tensor-parallel size itself, so `args` never repeats those.
    """

    weights: str
    """A Hugging Face repo id (download it and point `launch.model` at the copy) or a GGUF file name."""
    tensor_parallel: int | None = Field(None, ge=1)
    """GPUs the weights are split over (`--tensor-parallel-size` / `--tp-size`)."""
    gpu_memory_gb: int | None = Field(None, gt=0)
    """Total GPU memory across those GPUs; the notes say whether it is documented or estimated."""
    args: tuple[str, ...] = ()
    """Further documented command-line arguments, appended as they are (`launch.extra_args`)."""
    notes: str | None = None


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
    recipes: dict[Engine, Recipe] = Field(default_factory=dict)
    """Serving recipes for open weights, by engine; the served name is `hosts[engine]`."""
    notes: str | None = None

    @model_validator(mode="after")
    def _recipes_are_hosted(self) -> ModelCard:
        missing = sorted(engine for engine in self.recipes if engine not in self.hosts)
        if missing:
            raise ValueError(f"recipes for {', '.join(missing)} need a hosts entry (the served name)")
        if self.recipes and self.license == "proprietary":
            raise ValueError("recipes are for open weights, but the license is proprietary")
        return self

    def launch_block(self, engine: Literal["vllm", "sglang"]) -> dict[str, Any]:
        """The recipe as a provider `launch:` block (point `model` at a local copy of the weights)."""
        recipe = self.recipes[engine]
        block: dict[str, Any] = {"model": recipe.weights, "served_model_name": self.hosts[engine]}
        if recipe.tensor_parallel is not None:
            block["tensor_parallel_size"] = recipe.tensor_parallel
        if recipe.args:
            block["extra_args"] = list(recipe.args)
        return block

    @property
    def publisher(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def short_name(self) -> str:
        return self.id.split("/", 1)[1]

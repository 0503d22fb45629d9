"""The price of a call, from the catalog's per-million-token prices."""

from __future__ import annotations

from openfoundry.catalog import ModelCard
from openfoundry.providers.base import Usage


def cost_usd(card: ModelCard, usage: Usage) -> float:
    """Uncached prompt at the input price, cached prompt at the cached price (else input), completion
    (reasoning included: providers' usage is normalised so) at the output price. Unknown prices count 0."""
    pricing = card.pricing
    input_price = pricing.input or 0.0
    cached_price = pricing.cached_input if pricing.cached_input is not None else input_price
    uncached = max(0, usage.prompt_tokens - usage.cached_tokens)
    total = (
        uncached * input_price + usage.cached_tokens * cached_price + usage.completion_tokens * (pricing.output or 0.0)
    )
    return total / 1_000_000

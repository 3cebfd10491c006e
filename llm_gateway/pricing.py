"""Cost estimates: a per-model price table (USD per million tokens) and the cost of a usage.

The gateway config's `prices` replaces the defaults below model by model. These
are estimates for dashboards and budget alerts, not an invoice: OpenAI's list
prices when written, and for self-hosted models an estimated share of GPU time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_usd_per_million_tokens: float = Field(ge=0)
    completion_usd_per_million_tokens: float = Field(ge=0)


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(prompt_usd_per_million_tokens=0.15, completion_usd_per_million_tokens=0.60),
    "gpt-4o": ModelPrice(prompt_usd_per_million_tokens=2.50, completion_usd_per_million_tokens=10.00),
    "gpt-4.1-mini": ModelPrice(prompt_usd_per_million_tokens=0.40, completion_usd_per_million_tokens=1.60),
    # Self-hosted: an estimate of the GPU (or, locally, CPU) time a token costs.
    "smollm2-135m-instruct": ModelPrice(prompt_usd_per_million_tokens=0.02, completion_usd_per_million_tokens=0.05),
}


class PriceTable:
    def __init__(self, overrides: dict[str, ModelPrice] | None = None):
        self._prices = {**DEFAULT_PRICES, **(overrides or {})}

    def has(self, model: str) -> bool:
        return model in self._prices

    def cost_usd(self, model: str, tokens: dict[str, int]) -> float | None:
        """The cost of `tokens` ({"prompt": n, "completion": m}) on `model`; None when it has no price."""
        price = self._prices.get(model)
        if price is None:
            return None
        return (
            tokens.get("prompt", 0) * price.prompt_usd_per_million_tokens
            + tokens.get("completion", 0) * price.completion_usd_per_million_tokens
        ) / 1_000_000

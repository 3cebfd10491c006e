"""A tenant's request and token rates (the spec's `rate_limits`), enforced by the gateway."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    requests_per_minute: int = Field(60, ge=1)
    requests_per_hour: int = Field(1000, ge=1)
    tokens_per_minute: int = Field(20000, ge=1)

"""A tenant's request and token rates (the spec's `rate_limits`), enforced by the gateway."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RateLimits(BaseModel):
    """Counted across every gateway replica (in Redis); a request beyond a limit is refused with 429."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    requests_per_minute: int = Field(60, ge=1, description="Requests per minute (refused with 429 beyond).")
    requests_per_hour: int = Field(1000, ge=1, description="Requests per hour.")
    tokens_per_minute: int = Field(20000, ge=1, description="Prompt + completion tokens per minute.")

"""The models a tenant may use: names from the platform's model catalogue (llm_common/catalogue.py).

The spec only names models; whether the platform serves them is checked against the catalogue where
one is at hand: by `tenantctl validate` and `tenantctl up` in local mode, and on a cluster by the
admission policy on TenantRoutes that the platform root publishes with the catalogue.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# A catalogue name or alias: what callers send as `model`. Letters, digits and . _ : / - (Hugging Face ids
# such as meta-llama/Llama-3.1-8B-Instruct pass), starting and ending with a letter or digit.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._:/-]{0,126}[A-Za-z0-9])?$"
DEFAULT_MODEL = "smollm2-135m-instruct"
# What a caller sends to mean "this tenant's default model" (the proxy does, when its caller named none).
TENANT_DEFAULT_MODEL = "tenant-default"

ModelName = Annotated[str, StringConstraints(pattern=MODEL_NAME_PATTERN)]


class TenantModels(BaseModel):
    """The catalogue models (names or aliases) a tenant may ask for, and which one answers by default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    allowed: list[ModelName] = Field(
        default_factory=lambda: [DEFAULT_MODEL],
        min_length=1,
        max_length=50,
        description="Catalogue models (names or aliases) the tenant may use; any other is refused with 403.",
    )
    default: ModelName | None = Field(
        None, description="The model of a request that names none (or 'tenant-default'); unset: the first allowed."
    )
    fallback: ModelName | None = Field(
        None,
        description="Answers when the asked model's backend cannot (no usable member, or it failed before "
        "answering); one of allowed; unset: no failover.",
    )

    @model_validator(mode="after")
    def _default_and_fallback_allowed(self) -> TenantModels:
        if len(set(self.allowed)) != len(self.allowed):
            raise ValueError("allowed: each model may be listed once")
        for field in ("default", "fallback"):
            value = getattr(self, field)
            if value is not None and value not in self.allowed:
                raise ValueError(f"{field}: '{value}' must be one of allowed")
        if self.fallback is not None and self.fallback == self.default_model:
            raise ValueError("fallback: must differ from the default model")
        return self

    @property
    def default_model(self) -> str:
        return self.default or self.allowed[0]

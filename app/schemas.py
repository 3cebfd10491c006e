"""Request bodies of the proxy's own routes: `/ask` and `/documents/search`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator


class HistoryMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: StrictStr


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    model: StrictStr | None = Field(
        None, max_length=256, description="A model (or alias) the tenant may use; unset: the tenant's default."
    )
    max_tokens: StrictInt | None = Field(None, ge=1)
    history: list[HistoryMessage] = Field(default_factory=list)
    stream: StrictBool = False
    temperature: StrictFloat | StrictInt | None = Field(None, ge=0, le=2)
    seed: StrictInt | None = None
    knowledge: StrictBool = Field(True, description="Ground the answer in the tenant's documents (when it has any).")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: StrictStr = Field(min_length=1, max_length=4096)
    top_k: StrictInt = Field(3, ge=1, le=50)


class AskResponse(BaseModel):
    """The `/ask` answer (non-streamed)."""

    answer: str
    tenant: str
    model: str | None = None
    backend: str | None = None
    usage: dict | None = None
    citations: list[dict] = Field(default_factory=list)

"""Response schemas of both services, for the OpenAPI documents (llm_common/openapi.py).

The request schemas are the request contract's (llm_common/request_contract.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    type: str
    message: str
    code: str | None = None
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """Every error both services answer: `{"error": {"type", "message", "code"}}`."""

    error: ErrorDetail


class Usage(BaseModel):
    """The tokens the gateway recorded for the answer (its usage ledger, budgets and metrics count the same)."""

    model_config = ConfigDict(extra="allow")

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int | None = None
    estimated: bool | None = Field(
        None, description="true when the backend reported no usage and the gateway counted the tokens itself"
    )


class CompletionMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | None = None


class CompletionChoice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    message: CompletionMessage
    finish_reason: str | None = None


class ChatCompletion(BaseModel):
    """A non-streamed chat completion as the backend sent it (fields beyond these pass through), with the
    gateway's recorded `usage`."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str
    created: int = 0
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    """One model a tenant may use, with its catalogue entry (llm_common/catalogue.py)."""

    id: str
    object: str = "model"
    owned_by: str
    created: int = 0
    kind: Literal["chat", "embedding"] = "chat"
    aliases: list[str] = Field(default_factory=list)
    context_length: int | None = None
    enabled: bool = True
    default: bool = Field(False, description="The model of a request that names none.")

    def called(self, name: str) -> bool:
        return name == self.id or name in self.aliases


class ModelList(BaseModel):
    object: str
    data: list[ModelCard]


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str


class EmbeddingList(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: str
    data: list[dict]


class ResponseOutputMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    id: str
    role: str
    status: str
    content: list[dict]


class ResponseObject(BaseModel):
    """A Responses API `response` (`POST /v1/responses`; streamed: its events, the last one carrying it)."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str
    created_at: int
    status: str
    model: str
    output: list[ResponseOutputMessage]
    usage: dict | None = None
    error: dict | None = None
    incomplete_details: dict | None = None

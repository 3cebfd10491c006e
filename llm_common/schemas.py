"""Request schemas of the OpenAI chat API, as much as both services validate.

Unknown fields are kept (`extra="allow"`) and passed on to the backend, so
vLLM- or OpenAI-specific options keep working.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage] = Field(min_length=1)
    model: StrictStr | None = None
    stream: StrictBool = False
    max_tokens: StrictInt | None = Field(None, ge=1)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
    model: StrictStr | None = None


# -- Responses, for the OpenAPI documents (llm_common/openapi.py) ---------------------------------

class ErrorDetail(BaseModel):
    type: str
    message: str
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error both services answer: `{"error": {"type", "message", "code"}}`."""

    error: ErrorDetail


class Usage(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int | None = None


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
    """A non-streamed chat completion as the backend sent it (fields beyond these pass through)."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: str
    owned_by: str
    created: int


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

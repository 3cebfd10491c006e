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

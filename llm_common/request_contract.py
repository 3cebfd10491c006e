"""The request contract: exactly what a chat or embeddings request may carry to a backend.

Both services apply it (the gateway to every request, the tenant proxy to its
`/v1/chat/completions`), so a backend only ever sees parameters we know and have checked:

- **OpenAI parameters** are validated for type, range and size (the pydantic models below,
  which are also the served OpenAPI documents' request schemas).
- **Max tokens**: every alias (`max_tokens`, `max_completion_tokens`, `max_new_tokens`,
  `max_output_tokens`, `n_predict`) folds into one `max_tokens`, the smallest asked for,
  capped by the tenant's `max_tokens`. Only `max_tokens` goes upstream.
- **`n` must be 1**: one answer per request, so a request's cost is bounded by one answer's
  tokens (budgets and limits count what one answer can cost; a large `n` is also a known
  way to exhaust a vLLM server's memory).
- **Backend extensions** (vLLM's `guided_*`, llama.cpp's `grammar`, ...) are refused with a
  400 naming the field unless the tenant's spec lists them in `allowed_request_extensions`
  (checked against `ALLOWABLE_EXTENSIONS`, each of which is type- and size-checked here).
  Fields that could change how the prompt is rendered (`chat_template`, ...) are never
  accepted; any other unknown field is refused.
- **The tenant's system prompt stays first and alone at the top**: the proxy refuses
  `system`/`developer` messages from callers; the gateway accepts them only as the leading
  block (where the proxy puts the tenant's prompt). Messages carry text parts only,
  `name` may not be a role, and chat-template control sequences (`<|im_start|>`,
  `[INST]`, ...) are refused anywhere in the text, so no field or message shape can forge
  or out-rank a system turn.

Framework-free: the callers turn `ContractViolation` into their HTTP error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from tenant_spec.extensions import ALLOWABLE_EXTENSIONS, MAX_TOKEN_ID, NEVER_ACCEPTED, Number

MAX_MESSAGES = 1000
MAX_CONTENT_PARTS = 100
MAX_TOOLS = 128
MAX_STOP_SEQUENCES = 4
MAX_LOGIT_BIAS = 300
MAX_EMBEDDING_INPUTS = 2048

ROLE_NAMES = frozenset({"system", "developer", "user", "assistant", "tool", "function", "ipython"})
PRIVILEGED_ROLES = ("system", "developer")
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# Chat-template markers: ChatML and the like (<|im_start|>, <|start_header_id|>, <|eot_id|>, ...),
# Llama 2 / Mistral ([INST], <<SYS>>) and Gemma (<start_of_turn>). Backends that parse special tokens
# in the rendered prompt would read them as a new turn, e.g. a forged system message.
CONTROL_SEQUENCE = re.compile(r"<\|[A-Za-z0-9_]{1,40}\|>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>")


class ContractViolation(ValueError):
    """The request breaks the contract: `field` names where, `code` says what kind (for the 400)."""

    def __init__(self, field: str, message: str, code: str = "invalid_request"):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code


class PrivilegedMessage(ContractViolation):
    """A caller sent a `system`/`developer` message where only the tenant's prompt may be."""


# -- Messages ---------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: StrictStr


class RefusalPart(_Strict):
    type: Literal["refusal"]
    refusal: StrictStr


def content_parts_of(*types: str):
    """A clear error for content that is neither a string nor a list of parts of `types` (e.g. an image)."""

    def check(value: object) -> object:
        if isinstance(value, list):
            for index, part in enumerate(value):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in types:
                    raise ValueError(f"part {index} has type {kind!r}: only {' and '.join(types)} parts are accepted")
        elif not isinstance(value, str):
            raise ValueError("must be a string or a list of content parts")
        return value

    return BeforeValidator(check)


TextContent = Annotated[
    StrictStr | Annotated[list[TextPart], Field(min_length=1, max_length=MAX_CONTENT_PARTS)], content_parts_of("text")
]
AssistantContent = Annotated[
    StrictStr
    | Annotated[
        list[Annotated[TextPart | RefusalPart, Field(discriminator="type")]],
        Field(min_length=1, max_length=MAX_CONTENT_PARTS),
    ],
    content_parts_of("text", "refusal"),
]
Name = Annotated[StrictStr, Field(pattern=NAME_PATTERN)]


class _NamedMessage(_Strict):
    name: Name | None = None

    @field_validator("name")
    @classmethod
    def _not_a_role(cls, value: str | None) -> str | None:
        if value is not None and value.lower() in ROLE_NAMES:
            raise ValueError("must not be a role name (system, developer, user, assistant, tool, ...)")
        return value


class SystemMessage(_NamedMessage):
    role: Literal["system"]
    content: TextContent


class DeveloperMessage(_NamedMessage):
    role: Literal["developer"]
    content: TextContent


class UserMessage(_NamedMessage):
    role: Literal["user"]
    content: TextContent


class FunctionCall(_Strict):
    name: Name
    arguments: StrictStr


class ToolCall(_Strict):
    id: StrictStr = Field(min_length=1, max_length=256)
    type: Literal["function"]
    function: FunctionCall


class AssistantMessage(_NamedMessage):
    role: Literal["assistant"]
    content: AssistantContent | None = None
    refusal: StrictStr | None = None
    tool_calls: list[ToolCall] | None = Field(None, min_length=1, max_length=MAX_TOOLS)


class ToolMessage(_Strict):
    role: Literal["tool"]
    content: TextContent
    tool_call_id: StrictStr = Field(min_length=1, max_length=256)


Message = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


# -- Other chat parameters ------------------------------------------------------------------------


class StreamOptions(_Strict):
    include_usage: StrictBool = False


class JsonSchemaFormat(_Strict):
    name: StrictStr = Field(pattern=NAME_PATTERN)
    description: StrictStr | None = Field(None, max_length=4096)
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: StrictBool | None = None


class TextFormat(_Strict):
    type: Literal["text"]


class JsonObjectFormat(_Strict):
    type: Literal["json_object"]


class JsonSchemaResponseFormat(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaResponseFormat, Field(discriminator="type")]


class FunctionDefinition(_Strict):
    name: Name
    description: StrictStr | None = Field(None, max_length=16384)
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Strict):
    name: Name


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


MaxTokens = Annotated[StrictInt, Field(ge=1, le=10**9)]
# Every name a backend reads as "at most this many completion tokens" (OpenAI, TGI, the Responses
# API, llama.cpp's native API): all are folded into one `max_tokens` under the tenant's cap.
MAX_TOKENS_ALIASES = ("max_tokens", "max_completion_tokens", "max_new_tokens", "max_output_tokens", "n_predict")


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`: the OpenAI parameters both services accept.

    Other fields are refused (400 naming the field) unless they are backend extensions the
    tenant allows (see `allowed_request_extensions` in the tenant spec).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    model: StrictStr | None = Field(
        None, max_length=256, description="A catalogue model or alias the tenant may use; unset: its default."
    )
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: MaxTokens | None = Field(None, description="Capped by the tenant's max_tokens.")
    max_completion_tokens: MaxTokens | None = Field(None, description="Alias of max_tokens.")
    max_new_tokens: MaxTokens | None = Field(None, description="Alias of max_tokens.")
    max_output_tokens: MaxTokens | None = Field(None, description="Alias of max_tokens.")
    n_predict: MaxTokens | None = Field(None, description="Alias of max_tokens.")
    n: StrictInt | None = Field(None, ge=1, le=1, description="One answer per request: only 1 is accepted.")
    temperature: Number | None = Field(None, ge=0, le=2)
    top_p: Number | None = Field(None, gt=0, le=1)
    seed: StrictInt | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stop: StrictStr | Annotated[list[StrictStr], Field(min_length=1, max_length=MAX_STOP_SEQUENCES)] | None = None
    presence_penalty: Number | None = Field(None, ge=-2, le=2)
    frequency_penalty: Number | None = Field(None, ge=-2, le=2)
    logit_bias: (
        dict[Annotated[str, Field(pattern=r"^[0-9]{1,10}$")], Annotated[Number, Field(ge=-100, le=100)]] | None
    ) = Field(None, max_length=MAX_LOGIT_BIAS)
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(None, min_length=1, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    user: StrictStr | None = Field(None, max_length=256)

    @field_validator("n", mode="wrap")
    @classmethod
    def _one_answer(cls, value: object, handler) -> int | None:
        if value is not None and value != 1:
            raise ValueError("must be 1: one answer per request on this platform")
        return handler(value)

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, value: dict | None) -> dict | None:
        if value is not None and any(int(token) > MAX_TOKEN_ID for token in value):
            raise ValueError(f"token ids must be at most {MAX_TOKEN_ID}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ChatCompletionRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options: only allowed when stream is true")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs: needs logprobs set to true")
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {tool.function.name for tool in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError("tool_choice: names a function that is not in tools")
        return self


class EmbeddingRequest(BaseModel):
    """`POST /v1/embeddings`: text input only; the platform's embedding model and dimensions are fixed."""

    model_config = ConfigDict(extra="allow")

    input: (
        Annotated[StrictStr, Field(min_length=1)]
        | Annotated[
            list[Annotated[StrictStr, Field(min_length=1)]], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)
        ]
    )
    model: StrictStr | None = Field(None, max_length=256, description="Ignored: the platform's embedding model.")
    encoding_format: Literal["float", "base64"] | None = None
    user: StrictStr | None = Field(None, max_length=256)


_EXTENSION_ADAPTERS = {name: TypeAdapter(kind) for name, kind in ALLOWABLE_EXTENSIONS.items()}


# -- Applying the contract ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatPolicy:
    """What the caller's service allows.

    `max_tokens`: the tenant's cap. `allowed_extensions`: the extensions the tenant allows, or None
    to check their types only and leave the decision to the gateway (the proxy, which does not carry
    the list). `caller_sends_system`: False in the proxy (callers may not send system/developer
    messages at all), True in the gateway (only as the leading block).
    """

    max_tokens: int
    allowed_extensions: frozenset[str] | None = frozenset()
    caller_sends_system: bool = False


@dataclass(frozen=True)
class ChatRequest:
    """A request that kept the contract: `payload` is exactly what may go upstream (with the model the
    gateway picks for `model`, the caller's choice: None for the tenant's default)."""

    payload: dict
    stream: bool
    max_tokens: int
    model: str | None = None


def apply_chat_contract(body: dict, policy: ChatPolicy) -> ChatRequest:
    """Validate `body` (a JSON object) and build the upstream payload, or raise ContractViolation."""
    request = validated_request(ChatCompletionRequest, body)
    extras = request.model_extra or {}
    payload = {
        name: body[name]
        for name in request.model_fields_set
        if name not in MAX_TOKENS_ALIASES and name not in ("model", "n")
    }
    payload.update(_checked_extensions(extras, policy.allowed_extensions))
    _check_messages(request.messages, body["messages"], policy.caller_sends_system)
    _check_control_sequences(body)
    asked = [getattr(request, alias) for alias in MAX_TOKENS_ALIASES if getattr(request, alias) is not None]
    max_tokens = min([*asked, policy.max_tokens])
    payload["max_tokens"] = max_tokens
    if isinstance(payload.get("min_tokens"), int) and payload["min_tokens"] > max_tokens:
        raise ContractViolation("min_tokens", f"must not exceed max_tokens ({max_tokens})")
    return ChatRequest(payload, request.stream, max_tokens, request.model)


def apply_embedding_contract(body: dict) -> dict:
    """Validate an embeddings request; returns what may go upstream (no model: the route sets it)."""
    request = validated_request(EmbeddingRequest, body)
    _checked_extensions(request.model_extra or {}, frozenset())
    return {name: body[name] for name in request.model_fields_set if name != "model"}


def validated_request(model: type[BaseModel], body: dict) -> Any:
    """`body` validated into `model`, or a ContractViolation naming the field as the caller wrote it."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        # The deepest location is the most specific (a union's other members fail at the union itself).
        first = max(error.errors(include_url=False), key=lambda found: len(found["loc"]))
        field = _field_name(first["loc"], body, missing=first["type"] == "missing")
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] in ("missing", "union_tag_not_found"):
            field, message = (f"{field}.role" if first["type"] == "union_tag_not_found" else field), "is required"
        elif first["type"] == "union_tag_invalid":
            message = f"must be one of {first['ctx']['expected_tags']}"
            field = f"{field}.{first['ctx']['discriminator'].strip(chr(39))}"
        elif first["type"] == "extra_forbidden":
            message = "is not a known field"
        if ": " in message and field == "body" and message.split(":")[0].isidentifier():
            field, message = message.split(": ", 1)  # a model-level check names its own field
        raise ContractViolation(field, message) from None


def _field_name(location: tuple, body: object, missing: bool = False) -> str:
    """The error's location as a path in the caller's body: the steps pydantic adds for unions (the member's
    type, a discriminator's tag) are dropped by following the location through the body itself."""
    parts, current = [], body
    for index, part in enumerate(location):
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        elif not (missing and index == len(location) - 1):
            continue
        parts.append(str(part))
    return ".".join(parts) or "body"


def _checked_extensions(extras: dict, allowed: frozenset[str] | None) -> dict:
    """The extension fields that may go upstream; anything else is a ContractViolation naming it."""
    forwarded = {}
    for name in sorted(extras):
        if name in NEVER_ACCEPTED:
            raise ContractViolation(name, NEVER_ACCEPTED[name], code="unsupported_parameter")
        if name not in ALLOWABLE_EXTENSIONS:
            raise ContractViolation(name, "unknown parameter", code="unsupported_parameter")
        if allowed is not None and name not in allowed:
            raise ContractViolation(
                name,
                "a backend-specific extension this tenant does not allow "
                "(the tenant spec's allowed_request_extensions)",
                code="unsupported_parameter",
            )
        try:
            _EXTENSION_ADAPTERS[name].validate_python(extras[name], strict=True)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            raise ContractViolation(".".join([name, *(str(p) for p in first["loc"])]), first["msg"]) from None
        forwarded[name] = extras[name]
    return forwarded


def _check_messages(messages: list, raw: list[dict], caller_sends_system: bool) -> None:
    """System/developer messages: none from callers (proxy), or only as the leading block (gateway)."""
    leading = True
    for index, message in enumerate(messages):
        privileged = message.role in PRIVILEGED_ROLES
        if privileged and not caller_sends_system:
            raise PrivilegedMessage(
                f"messages.{index}.role",
                f"'{message.role}' messages are not accepted; this tenant's system prompt is fixed by the platform",
                code="system_prompt_locked",
            )
        if privileged and not leading:
            raise PrivilegedMessage(
                f"messages.{index}.role",
                f"'{message.role}' messages are accepted only before every other message",
                code="system_message_position",
            )
        leading = leading and privileged


def _check_control_sequences(body: dict) -> None:
    """Refuse chat-template control sequences in any text a model reads: messages, tools."""
    for field, text in _model_visible_texts(body):
        found = CONTROL_SEQUENCE.search(text)
        if found:
            raise ContractViolation(
                field,
                f"contains '{found.group()}', a chat-template control sequence; these are not accepted",
                code="control_sequence",
            )


def _model_visible_texts(body: dict):
    for index, message in enumerate(body["messages"]):
        where = f"messages.{index}"
        content = message.get("content")
        if isinstance(content, str):
            yield f"{where}.content", content
        elif isinstance(content, list):
            for number, part in enumerate(content):
                for key in ("text", "refusal"):
                    if isinstance(part.get(key), str):
                        yield f"{where}.content.{number}.{key}", part[key]
        if isinstance(message.get("refusal"), str):
            yield f"{where}.refusal", message["refusal"]
        for number, call in enumerate(message.get("tool_calls") or []):
            yield f"{where}.tool_calls.{number}.function.arguments", call["function"]["arguments"]
    yield from _strings_in(body.get("tools"), "tools")


def _strings_in(value: object, where: str):
    """Every string in a JSON value (keys too), with where it is."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings_in(item, f"{where}.{index}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{key}", key
            yield from _strings_in(item, f"{where}.{key}")

"""The Responses API (`POST /v1/responses`), text subset, translated to chat completions in one place.

Both services serve the route by translating: the request into a chat-completion request that then
keeps the request contract (llm_common/request_contract.py), the completion back into a `response`
object, and a chat-completion stream into the Responses API's stream events. Framework-free pure
functions and one stream translator; the routes are thin adapters.

What is served: `input` as a string or a list of messages with text parts (`input_text`, and the
`output_text`/`refusal` parts of earlier assistant turns), `instructions`, `max_output_tokens`
(folded into the capped `max_tokens`), `temperature`, `top_p`, `text.format` (text, json_object,
json_schema), `metadata` (echoed), `stream`. Responses are not stored: `previous_response_id` and
`conversation` are refused (send the earlier turns in `input`), and so are tools, images, files,
reasoning and background runs, each with a 400 naming the field.

`instructions` become a system message at the top of the chat messages. The proxy puts them below the
tenant's prompt (which stays first and cannot be replaced: app/prompt.py) and refuses system/developer messages in
`input`, as on its chat route; the gateway accepts system/developer input messages only as the
leading block, as on its chat route.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from llm_common.request_contract import (
    MAX_CONTENT_PARTS,
    MAX_MESSAGES,
    NAME_PATTERN,
    ChatPolicy,
    ChatRequest,
    ContractViolation,
    MaxTokens,
    Number,
    PrivilegedMessage,
    apply_chat_contract,
    content_parts_of,
    validated_request,
)

MAX_METADATA_PAIRS = 16
# Fields of the Responses API this platform does not serve, and why (a 400 naming the field).
UNSUPPORTED: dict[str, str] = {
    "previous_response_id": "responses are not stored on this platform: send the earlier turns in `input`",
    "conversation": "conversations are not stored on this platform: send the earlier turns in `input`",
    "tools": "tools are not served on the Responses route; use /v1/chat/completions for tool calls",
    "prompt": "stored prompt templates are not served; send `instructions` and `input`",
    "background": "background responses are not served (responses are not stored)",
    "reasoning": "reasoning options are not served by this platform's models",
    "top_logprobs": "log probabilities are not served on the Responses route",
    "max_tool_calls": "tools are not served on the Responses route",
    "context_management": "responses are not stored on this platform",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- The request ----------------------------------------------------------------------------------


class InputText(_Strict):
    type: Literal["input_text"]
    text: StrictStr


class OutputText(_Strict):
    type: Literal["output_text"]
    text: StrictStr
    annotations: list[Any] | None = Field(None, max_length=0, description="Earlier turns' annotations: none here.")
    logprobs: list[Any] | None = None


class RefusalContent(_Strict):
    type: Literal["refusal"]
    refusal: StrictStr


def _parts(*members):
    one_of = Union[members]  # noqa: UP007 - a union of a tuple of types built at run time has no `|` spelling
    return Annotated[
        list[Annotated[one_of, Field(discriminator="type")]] if len(members) > 1 else list[members[0]],
        Field(min_length=1, max_length=MAX_CONTENT_PARTS),
    ]


ItemStatus = Literal["in_progress", "completed", "incomplete"]


class InputMessage(_Strict):
    """A user, system or developer message (`type` may be left out, as `EasyInputMessage` does)."""

    type: Literal["message"] | None = None
    role: Literal["user", "system", "developer"]
    content: Annotated[StrictStr | _parts(InputText), content_parts_of("input_text")]
    id: StrictStr | None = Field(None, max_length=256)
    status: ItemStatus | None = None


class AssistantTurn(_Strict):
    """An earlier answer, as the API returned it (`output_text`/`refusal` parts) or written by the caller."""

    type: Literal["message"] | None = None
    role: Literal["assistant"]
    content: Annotated[
        StrictStr | _parts(OutputText, InputText, RefusalContent),
        content_parts_of("output_text", "input_text", "refusal"),
    ]
    id: StrictStr | None = Field(None, max_length=256)
    status: ItemStatus | None = None
    phase: Literal["commentary", "final_answer"] | None = None


InputItem = Annotated[InputMessage | AssistantTurn, Field(discriminator="role")]


class TextFormatText(_Strict):
    type: Literal["text"]


class TextFormatJsonObject(_Strict):
    type: Literal["json_object"]


class TextFormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    name: StrictStr = Field(pattern=NAME_PATTERN)
    schema_: dict[str, Any] = Field(alias="schema")
    description: StrictStr | None = Field(None, max_length=4096)
    strict: StrictBool | None = None


class TextConfig(_Strict):
    format: (
        Annotated[TextFormatText | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")] | None
    ) = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponseRequest(BaseModel):
    """`POST /v1/responses`: the text subset of OpenAI's Responses API (other fields: a 400 naming them)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    input: (
        Annotated[StrictStr, Field(min_length=1)]
        | Annotated[list[InputItem], Field(min_length=1, max_length=MAX_MESSAGES)]
    )
    instructions: StrictStr | None = Field(None, description="Placed below the tenant's system prompt (proxy).")
    model: StrictStr | None = Field(
        None, max_length=256, description="A catalogue model or alias the tenant may use; unset: its default."
    )
    max_output_tokens: MaxTokens | None = Field(None, description="Capped by the tenant's max_tokens.")
    temperature: Number | None = Field(None, ge=0, le=2)
    top_p: Number | None = Field(None, gt=0, le=1)
    stream: StrictBool = False
    stream_options: dict[Literal["include_obfuscation"], StrictBool] | None = None
    text: TextConfig | None = None
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[StrictStr, Field(max_length=512)]] | None = Field(
        None, max_length=MAX_METADATA_PAIRS
    )
    store: StrictBool | None = Field(None, description="Accepted; responses are never stored.")
    include: Annotated[list[Annotated[StrictStr, Field(max_length=128)]], Field(max_length=16)] | None = None
    user: StrictStr | None = Field(None, max_length=256)
    safety_identifier: StrictStr | None = Field(None, max_length=256)
    prompt_cache_key: StrictStr | None = Field(None, max_length=256)
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: Literal["auto", "default", "flex", "priority", "scale"] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    parallel_tool_calls: StrictBool | None = None
    tool_choice: Literal["none", "auto"] | None = Field(None, description="Without tools, only none or auto.")


# -- Translating the request ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResponsesChat:
    """A Responses request that kept the contract: `chat` is the chat completion to ask for, `echo` what the
    `response` object repeats of the request, `instructions` the caller's (already the first message)."""

    chat: ChatRequest
    echo: dict
    instructions: str | None


def apply_responses_contract(body: dict, policy: ChatPolicy, *, system_input: bool) -> ResponsesChat:
    """Validate a Responses request and translate it into a chat completion that keeps the request contract.

    `system_input`: whether `input` may hold system/developer messages (the gateway: as the leading block;
    the proxy: never). Raises ContractViolation naming the field in the Responses request's terms.
    """
    for name, reason in UNSUPPORTED.items():
        if body.get(name) not in (None, [], False) and not (name == "reasoning" and body[name] == {}):
            raise ContractViolation(name, reason, code="unsupported_parameter")
    clean = {
        name: value for name, value in body.items() if not (name in UNSUPPORTED and value in (None, [], False, {}))
    }
    _check_item_types(clean.get("input"))
    request: ResponseRequest = validated_request(ResponseRequest, clean)
    messages = _chat_messages(request, clean["input"])
    if not system_input:
        for index, message in enumerate(messages[1 if request.instructions is not None else 0 :]):
            if message["role"] in ("system", "developer"):
                raise PrivilegedMessage(
                    f"input.{index}.role",
                    f"'{message['role']}' messages are not accepted; "
                    "this tenant's system prompt is fixed by the platform (send `instructions`: "
                    "they are placed below it)",
                    code="system_prompt_locked",
                )
    chat_body = _chat_body(request, clean, messages)
    try:
        chat = apply_chat_contract(
            chat_body, ChatPolicy(policy.max_tokens, policy.allowed_extensions, caller_sends_system=True)
        )
    except ContractViolation as violation:
        raise _in_responses_terms(violation, request) from None
    return ResponsesChat(chat, {**_echo(request), "max_output_tokens": chat.max_tokens}, request.instructions)


def _check_item_types(items: object) -> None:
    """Items other than messages (function calls, reasoning, ...) get a clear 400 rather than a union's error."""
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in (None, "message"):
            raise ContractViolation(
                f"input.{index}.type",
                f"'{kind}' items are not served: this route serves "
                "the text subset of the Responses API (messages with text parts)",
                code="unsupported_parameter",
            )


def _chat_messages(request: ResponseRequest, raw_input: object) -> list[dict]:
    messages = [{"role": "system", "content": request.instructions}] if request.instructions is not None else []
    if isinstance(request.input, str):
        return [*messages, {"role": "user", "content": request.input}]
    for item, raw in zip(request.input, raw_input, strict=True):
        content = raw["content"]
        if isinstance(content, list):
            content = [
                {"type": "refusal", "refusal": part["refusal"]}
                if part["type"] == "refusal"
                else {"type": "text", "text": part["text"]}
                for part in content
            ]
        messages.append({"role": item.role, "content": content})
    return messages


def _chat_body(request: ResponseRequest, raw: dict, messages: list[dict]) -> dict:
    chat: dict = {"messages": messages, "stream": request.stream}
    for name in ("model", "temperature", "top_p", "user"):
        if getattr(request, name) is not None:
            chat[name] = raw[name]
    if request.max_output_tokens is not None:
        chat["max_tokens"] = request.max_output_tokens
    text_format = request.text.format if request.text is not None else None
    if isinstance(text_format, TextFormatJsonSchema):
        schema = {"name": text_format.name, "schema": text_format.schema_}
        schema.update(
            {
                key: getattr(text_format, key)
                for key in ("description", "strict")
                if getattr(text_format, key) is not None
            }
        )
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif text_format is not None:
        chat["response_format"] = {"type": text_format.type}
    if request.stream:
        chat["stream_options"] = {"include_usage": True}  # response.completed carries the usage
    return chat


def _in_responses_terms(violation: ContractViolation, request: ResponseRequest) -> ContractViolation:
    """A chat-contract violation, its field renamed to where the caller put it."""
    offset = 1 if request.instructions is not None else 0
    parts = violation.field.split(".")
    if parts[0] == "messages" and len(parts) > 1 and parts[1].isdigit():
        index = int(parts[1]) - offset
        if index < 0:
            field_name = "instructions"
        elif isinstance(request.input, str):
            field_name = "input"
        else:
            rest = ".".join(parts[2:])
            field_name = f"input.{index}" + (f".{rest}" if rest else "")
    else:
        field_name = {"max_tokens": "max_output_tokens", "response_format": "text.format"}.get(parts[0], parts[0])
        field_name = ".".join([field_name, *parts[1:]])
    message = str(violation).split(": ", 1)[1]
    renamed = type(violation)(field_name, message, code=violation.code)
    return renamed


def _echo(request: ResponseRequest) -> dict:
    """The request's settings as a `response` object repeats them."""
    text_format = (
        request.text.format.model_dump(by_alias=True, exclude_none=True)
        if request.text is not None and request.text.format is not None
        else {"type": "text"}
    )
    return {
        "instructions": request.instructions,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "metadata": request.metadata or {},
        "text": {"format": text_format},
        "parallel_tool_calls": request.parallel_tool_calls if request.parallel_tool_calls is not None else True,
        "tool_choice": request.tool_choice or "auto",
        "tools": [],
        "truncation": request.truncation or "disabled",
        "store": False,
        "previous_response_id": None,
        "reasoning": None,
        "service_tier": request.service_tier,
        "user": request.user,
        "background": False,
    }


# -- The response ---------------------------------------------------------------------------------


class MalformedCompletion(ValueError):
    """The upstream's chat completion cannot be read as one (no message, not an object)."""


@dataclass
class ResponseFrame:
    """What one response is: its ids and creation time, and the request's settings it echoes."""

    echo: dict
    id: str = field(default_factory=lambda: f"resp_{uuid.uuid4().hex}")
    message_id: str = field(default_factory=lambda: f"msg_{uuid.uuid4().hex}")
    created_at: int = field(default_factory=lambda: int(time.time()))

    def response(
        self,
        status: str,
        model: str,
        output: list[dict],
        usage: dict | None,
        incomplete_reason: str | None = None,
        error: dict | None = None,
    ) -> dict:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": model,
            "output": output,
            "usage": usage,
            "error": error,
            "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
            **self.echo,
        }

    def message(self, text: str, status: str, refusal: str | None = None) -> dict:
        content = (
            [{"type": "refusal", "refusal": refusal}]
            if refusal
            else [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        )
        return {
            "type": "message",
            "id": self.message_id,
            "status": status,
            "role": "assistant",
            "content": content if (text or refusal or status != "in_progress") else [],
        }


def response_usage(usage: object) -> dict | None:
    """A chat `usage` as the Responses API counts it (an `estimated` mark is kept)."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    converted = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": _count(usage.get("total_tokens")) or prompt + completion,
    }
    if usage.get("estimated") is True:
        converted["estimated"] = True
    return converted


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_from_completion(completion: object, frame: ResponseFrame) -> dict:
    """The `response` object of a non-streamed chat completion."""
    try:
        choice = completion["choices"][0]
        message = choice["message"]
        text = message.get("content") or ""
        refusal = message.get("refusal")
        if not isinstance(text, str) or not isinstance(completion.get("model", ""), str):
            raise TypeError
    except (KeyError, IndexError, TypeError, AttributeError):
        raise MalformedCompletion("the chat completion has no message") from None
    incomplete = INCOMPLETE_REASONS.get(choice.get("finish_reason"))
    status = "incomplete" if incomplete else "completed"
    return frame.response(
        status,
        completion.get("model") or "",
        [frame.message(text, status, refusal)],
        response_usage(completion.get("usage")),
        incomplete_reason=incomplete,
    )


class ResponseEventStream:
    """Chat-completion chunks in, the Responses API's stream events out (each a dict with `type` and
    `sequence_number`; `encode_response_event` writes one as SSE).

        events = ResponseEventStream(frame)
        send(events.opening())                  # response.created, response.in_progress
        for chunk in chat_chunks: send(events.chunk(chunk))   # response.output_text.delta, ...
        send(events.completed(usage))           # ... response.completed (or response.incomplete)
        send(events.failed(code, message))      # instead, when the upstream broke: error, response.failed
    """

    def __init__(self, frame: ResponseFrame):
        self.frame = frame
        self.model = ""
        self.text: list[str] = []
        self.finish_reason: str | None = None
        self._sequence = 0
        self._item_open = False

    def opening(self) -> list[dict]:
        in_progress = self.frame.response("in_progress", self.model, [], None)
        return [
            self._event("response.created", response=in_progress),
            self._event("response.in_progress", response=in_progress),
        ]

    def chunk(self, chunk: dict) -> list[dict]:
        """The events of one chat-completion chunk (none for a role-only or usage-only chunk)."""
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self.model = chunk["model"]
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        if not isinstance(text, str) or not text:
            return []
        events = self._open_item()
        self.text.append(text)
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=self.frame.message_id,
                output_index=0,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return events

    def completed(self, usage: object) -> list[dict]:
        """The closing events, with the answer's usage (a chat `usage`)."""
        incomplete = INCOMPLETE_REASONS.get(self.finish_reason)
        status = "incomplete" if incomplete else "completed"
        text = "".join(self.text)
        events = self._open_item()
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item = self.frame.message(text, status)
        ids = {"item_id": self.frame.message_id, "output_index": 0, "content_index": 0}
        events += [
            self._event("response.output_text.done", **ids, text=text, logprobs=[]),
            self._event("response.content_part.done", **ids, part=part),
            self._event("response.output_item.done", output_index=0, item=item),
        ]
        response = self.frame.response(status, self.model, [item], response_usage(usage), incomplete_reason=incomplete)
        events.append(self._event(f"response.{status}", response=response))
        return events

    def failed(self, code: str, message: str) -> list[dict]:
        """The upstream broke after the stream began: an `error` event, then `response.failed`."""
        error = {"code": code, "message": message}
        output = [self.frame.message("".join(self.text), "incomplete")] if self._item_open else []
        response = self.frame.response("failed", self.model, output, None, error=error)
        return [
            self._event("error", code=code, message=message, param=None),
            self._event("response.failed", response=response),
        ]

    def _open_item(self) -> list[dict]:
        if self._item_open:
            return []
        self._item_open = True
        ids = {"item_id": self.frame.message_id, "output_index": 0, "content_index": 0}
        return [
            self._event("response.output_item.added", output_index=0, item=self.frame.message("", "in_progress")),
            self._event(
                "response.content_part.added",
                **ids,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            ),
        ]

    def _event(self, event_type: str, **fields: Any) -> dict:
        event = {"type": event_type, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

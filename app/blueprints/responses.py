"""`POST /v1/responses` on a tenant URL: the Responses API's text subset, for current OpenAI clients
and the OpenAI Agents SDK.

Translated to a chat completion by llm_common/responses.py (shared with the gateway) and answered
through the proxy's one way to a completion (app/completions.py): the tenant's prompt first, the
caller's `instructions` below it (app/prompt.py says how), guardrails on everything the caller sent
(instructions included), `max_output_tokens` under the tenant's cap. System/developer messages in
`input` are refused, as on `/v1/chat/completions`. Streams send the API's events (`response.created`,
`response.output_text.delta`, ..., `response.completed` with the gateway's usage).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from flask import Blueprint, Response, jsonify, request

from app.completions import Completion, CountedStream, tenant_payload
from app.request_body import read_json_object
from app.services import current_services
from llm_common.errors import ApiError
from llm_common.json_body import contract_error
from llm_common.request_contract import ChatPolicy, ContractViolation
from llm_common.responses import (
    MalformedCompletion,
    ResponseEventStream,
    ResponseFrame,
    apply_responses_contract,
    response_from_completion,
)
from llm_common.sse import STREAM_HEADERS, STREAM_MEDIA_TYPE, encode_named_event

blueprint = Blueprint("responses", __name__)


@blueprint.post("/v1/responses")
def create_response():
    services = current_services()
    config = services.config
    body = read_json_object(request, config.max_body_bytes)
    try:
        translated = apply_responses_contract(
            body, ChatPolicy(config.max_tokens, allowed_extensions=None), system_input=False
        )
    except ContractViolation as violation:
        raise contract_error(violation) from None
    caller_messages = translated.chat.payload["messages"][0 if translated.instructions is None else 1 :]
    payload = tenant_payload(
        services,
        {**translated.chat.payload, "messages": caller_messages},
        translated.instructions,
        model=translated.chat.model,
    )
    frame = ResponseFrame(translated.echo)
    if translated.chat.stream:
        stream = CountedStream(services, payload)
        response = Response(
            _events(stream, ResponseEventStream(frame)),
            mimetype=STREAM_MEDIA_TYPE,
            headers={**STREAM_HEADERS, "X-LLM-Backend": stream.backend},
        )
        response.call_on_close(stream.close)
        return response
    completion = Completion(services, payload)
    try:
        answer = response_from_completion(completion.body, frame)
    except MalformedCompletion:
        raise ApiError(502, "the gateway's answer had no message", code="bad_gateway_answer") from None
    return jsonify(answer), 200, {"X-LLM-Backend": completion.backend}


def _events(stream: CountedStream, events: ResponseEventStream) -> Iterator[bytes]:
    def sent(batch: Iterable[dict]) -> Iterator[bytes]:
        return (encode_named_event(event) for event in batch)

    try:
        yield from sent(events.opening())
        for _data, chunk in stream.chunks():
            if chunk is not None and "error" in chunk:  # the gateway's upstream broke and said so in-band
                stream.broke(chunk["error"])
                yield from sent(events.failed("server_error", _message_of(chunk["error"])))
                return
            if chunk is not None:
                yield from sent(events.chunk(chunk))
        yield from sent(events.completed(stream.usage))
    except Exception as error:
        stream.broke(error)
        yield from sent(events.failed("server_error", "the gateway stream broke off before the answer was complete"))
    finally:
        stream.close()


def _message_of(error: object) -> str:
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else "the answer stream broke off"

"""`POST /v1/chat/completions` on a tenant URL, so the openai SDK works against a tenant.

The request contract (llm_common/request_contract.py) as the gateway applies it, with the
proxy's stricter rule for the prompt: callers may not send `system`/`developer` messages at
all, the tenant's prompt goes first, max tokens are capped, and the model is the tenant's.
Backend extensions are type-checked here and allowed or refused by the gateway, which holds
the tenant's `allowed_request_extensions`.

A stream carries its usage in a last chunk when the caller asks (`stream_options.include_usage`): the
gateway's, the tokens it recorded (marked `"estimated": true` when the backend reported none); either
way the tokens are counted in the proxy's metrics (app/completions.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, request

from app.completions import Completion, CountedStream, tenant_payload
from app.request_body import read_json_object
from app.services import current_services
from llm_common.errors import error_body
from llm_common.json_body import contract_error
from llm_common.request_contract import ChatPolicy, ContractViolation, apply_chat_contract
from llm_common.sse import DONE, STREAM_HEADERS, STREAM_MEDIA_TYPE, encode_event
from llm_common.usage import is_usage_only

blueprint = Blueprint("openai_compat", __name__)


@blueprint.post("/v1/chat/completions")
def chat_completions():
    services = current_services()
    config = services.config
    body = read_json_object(request, config.max_body_bytes)
    try:
        chat = apply_chat_contract(body, ChatPolicy(config.max_tokens, allowed_extensions=None))
    except ContractViolation as violation:
        raise contract_error(violation) from None
    payload = tenant_payload(services, chat.payload, model=chat.model)
    if chat.stream:
        stream = CountedStream(services, payload)
        include_usage = (chat.payload.get("stream_options") or {}).get("include_usage") is True
        response = Response(
            _relay(stream, include_usage),
            mimetype=STREAM_MEDIA_TYPE,
            headers={**STREAM_HEADERS, "X-LLM-Backend": stream.backend},
        )
        response.call_on_close(stream.close)
        return response
    completion = Completion(services, payload)
    return Response(completion.content, mimetype="application/json", headers={"X-LLM-Backend": completion.backend})


def _relay(stream: CountedStream, include_usage: bool) -> Iterator[bytes]:
    """The gateway's chunks as they come; its closing usage chunk only for a caller who asked for it."""
    try:
        for data, chunk in stream.chunks():
            if chunk is not None and "error" in chunk:  # the gateway's upstream broke and said so in-band
                stream.broke(chunk["error"])
                yield encode_event(data)
                return
            if is_usage_only(chunk) and not include_usage:
                continue
            yield encode_event(data)
        yield encode_event(DONE)
    except Exception as error:
        stream.broke(error)
        yield encode_event(
            error_body(
                "upstream_error",
                "the gateway stream broke off before the answer was complete",
                request_id=stream.request_id,
            )
        )
    finally:
        stream.close()

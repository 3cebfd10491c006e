"""`POST /v1/chat/completions` on a tenant URL, so the openai SDK works against a tenant.

The request contract (llm_common/request_contract.py) as the gateway applies it, with the
proxy's stricter rule for the prompt: callers may not send `system`/`developer` messages at
all, the tenant's prompt goes first, max tokens are capped, and the model is the tenant's.
Backend extensions are type-checked here and allowed or refused by the gateway, which holds
the tenant's `allowed_request_extensions`.
"""

from __future__ import annotations

import json
import logging
from typing import Iterator

from flask import Blueprint, Response, request

from app.gateway_client import BACKEND_HEADER
from app.metrics import ProxyMetrics
from app.prompt import with_tenant_prompt
from app.services import current_services
from llm_common.errors import error_body
from llm_common.json_body import contract_error, read_json_object
from llm_common.openai_client import ChatStream
from llm_common.request_contract import ChatPolicy, ContractViolation, apply_chat_contract
from llm_common.sse import STREAM_HEADERS, STREAM_MEDIA_TYPE, RelayHooks, relay_events
from llm_common.tracing import RequestRecord, current_record

log = logging.getLogger(__name__)
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
    payload = {**chat.payload, "messages": with_tenant_prompt(config.system_prompt, chat.payload["messages"])}
    config.guardrails.check(payload["messages"], tools=payload.get("tools"))
    record = current_record()
    if chat.stream:
        stream = services.gateway.open_chat_stream(payload)
        backend = stream.headers.get(BACKEND_HEADER, "")
        _note_backend(record, backend)
        response = Response(_relay(stream, services.metrics, record), mimetype=STREAM_MEDIA_TYPE,
                            headers={**STREAM_HEADERS, "X-LLM-Backend": backend})
        response.call_on_close(stream.close)
        return response
    reply = services.gateway.chat(payload)
    backend = reply.headers.get(BACKEND_HEADER, "")
    _note_backend(record, backend)
    if record is not None:
        record.count_usage(_usage_of(reply.content))
    return Response(reply.content, mimetype="application/json", headers={"X-LLM-Backend": backend})


def _note_backend(record: RequestRecord | None, backend: str) -> None:
    if record is not None:
        record.backend = backend or None


def _usage_of(content: bytes) -> object:
    try:
        return json.loads(content).get("usage")
    except (ValueError, AttributeError):
        return None


def _relay(stream: ChatStream, metrics: ProxyMetrics, record: RequestRecord | None) -> Iterator[bytes]:
    request_id = record.request_id if record is not None else None

    def observe(data: str) -> str:
        if record is not None and '"usage":{' in data:
            record.count_usage(_usage_of(data.encode()))
        return data

    def broken(error: Exception) -> dict:
        metrics.count_gateway_error("stream_broken")
        log.warning("[%s] the gateway stream broke: %s", request_id, error)
        return error_body("upstream_error", "the gateway stream broke off before the answer was complete",
                          request_id=request_id)

    try:
        yield from relay_events(stream, RelayHooks(broken=broken, observe=observe))
    finally:
        stream.close()

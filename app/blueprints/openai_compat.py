"""`POST /v1/chat/completions` on a tenant URL, so the openai SDK works against a tenant.

Same enforcement as `/ask`: the tenant's prompt goes first, caller system
messages are refused, max_tokens is capped, and the model is the tenant's.
"""

from __future__ import annotations

from typing import Iterator

from flask import Blueprint, Response, request

from app.gateway_client import BACKEND_HEADER
from app.metrics import ProxyMetrics
from app.prompt import with_tenant_prompt
from app.services import current_services
from llm_common.errors import error_body
from llm_common.json_body import read_json_object, validate_model
from llm_common.openai_client import ChatStream
from llm_common.schemas import ChatCompletionRequest
from llm_common.sse import DONE, encode_event

blueprint = Blueprint("openai_compat", __name__)


@blueprint.post("/v1/chat/completions")
def chat_completions():
    services = current_services()
    config = services.config
    body = read_json_object(request, config.max_body_bytes)
    chat = validate_model(ChatCompletionRequest, body)
    payload = {
        **body,
        "messages": with_tenant_prompt(config.system_prompt, body["messages"]),
        "max_tokens": min(chat.max_tokens or config.max_tokens, config.max_tokens),
    }
    payload.pop("model", None)
    config.guardrails.check(payload["messages"], tools=[body.get("tools"), body.get("functions")])
    if chat.stream:
        stream = services.gateway.open_chat_stream(payload)
        return Response(_relay(stream, services.metrics), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-LLM-Backend": stream.headers.get(BACKEND_HEADER, "")})
    reply = services.gateway.chat(payload)
    return Response(reply.content, mimetype="application/json",
                    headers={"X-LLM-Backend": reply.headers.get(BACKEND_HEADER, "")})


def _relay(stream: ChatStream, metrics: ProxyMetrics) -> Iterator[bytes]:
    try:
        for data in stream:
            if data == DONE:
                break
            yield encode_event(data)
        yield encode_event(DONE)
    except Exception as error:
        metrics.count_gateway_error("stream_broken")
        yield encode_event(error_body("upstream_error", f"gateway stream broke: {error}"))
    finally:
        stream.close()

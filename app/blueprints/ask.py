"""`POST /ask`: one question in, the tenant assistant's answer out (JSON or SSE).

Order: validate, guardrails on everything the caller sent, then (with a knowledge base) embed
the question and retrieve the tenant's most similar chunks, which go into the caller's turn as
delimited context (never the system message: app/knowledge/grounding.py) and come back as
`citations` (JSON: in the answer; SSE: in the `done` event). A refused question is never embedded.

Streamed answers ask the gateway for their usage (`stream_options.include_usage`); when the
backend reports none (llama.cpp's server), the proxy estimates it as the gateway's ledger does
(llm_common/usage.py) and marks it `"estimated": true`. Either way it is counted in
`tenant_proxy_tokens_total`.
"""

from __future__ import annotations

import json
import time
from typing import Iterator

from flask import Blueprint, Response, jsonify, request

from app.gateway_client import BACKEND_HEADER
from app.knowledge.grounding import Grounding, ground
from app.prompt import ask_messages
from app.schemas import AskRequest
from app.services import ProxyServices, current_services
from llm_common.errors import ApiError, Refusal, error_body
from llm_common.json_body import read_json_object, validate_model
from llm_common.openai_client import ChatStream
from llm_common.sse import DONE, STREAM_HEADERS, encode_event
from llm_common.usage import estimate_prompt_tokens


blueprint = Blueprint("ask", __name__)


@blueprint.post("/ask")
def ask():
    services = current_services()
    config = services.config
    ask_request = validate_model(AskRequest, read_json_object(request, config.max_body_bytes))
    if len(ask_request.question.encode("utf-8")) > config.max_question_bytes:
        raise Refusal(413, f"question is longer than {config.max_question_bytes} bytes", reason="question_too_long")
    if len(ask_request.history) > config.max_history_messages:
        raise Refusal(400, f"history: at most {config.max_history_messages} messages", reason="history_too_long")
    history = [message.model_dump() for message in ask_request.history]
    services.guardrails.check([*history, {"role": "user", "content": ask_request.question}])
    grounding = _grounding(services, ask_request)
    payload = _chat_payload(config.system_prompt, config.max_tokens, ask_request, history, grounding)
    if ask_request.stream:
        started = time.perf_counter()
        stream = services.gateway.open_chat_stream(
            {**payload, "stream": True, "stream_options": {"include_usage": True}})
        return Response(_answer_events(stream, services, started, grounding.citations,
                                       estimate_prompt_tokens(payload["messages"])),
                        mimetype="text/event-stream", headers=STREAM_HEADERS)
    reply = services.gateway.chat(payload)
    completion = _completion_of(reply.content)
    services.metrics.count_usage(completion.get("usage"))
    return jsonify({
        "answer": _first_message_text(completion),
        "tenant": config.tenant,
        "model": completion.get("model"),
        "backend": reply.headers.get(BACKEND_HEADER),
        "usage": completion.get("usage"),
        "citations": grounding.citations,
    })


def _grounding(services: ProxyServices, ask_request: AskRequest) -> Grounding:
    if services.knowledge is None or not ask_request.knowledge:
        return Grounding()
    return ground(services.knowledge.retrieve(ask_request.question))


def _chat_payload(system_prompt: str, tenant_max_tokens: int, ask_request: AskRequest, history: list[dict],
                  grounding: Grounding) -> dict:
    payload = {
        "messages": ask_messages(system_prompt, grounding.question(ask_request.question), history),
        "max_tokens": min(ask_request.max_tokens or tenant_max_tokens, tenant_max_tokens),
    }
    if ask_request.temperature is not None:
        payload["temperature"] = ask_request.temperature
    if ask_request.seed is not None:
        payload["seed"] = ask_request.seed
    return payload


def _completion_of(content: bytes) -> dict:
    try:
        completion = json.loads(content)
    except ValueError:
        completion = None
    if not isinstance(completion, dict):
        raise ApiError(502, "the gateway's answer was not a JSON object", code="bad_gateway_answer")
    return completion


def _first_message_text(completion: dict) -> str:
    try:
        return completion["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise ApiError(502, "the gateway's answer had no message", code="bad_gateway_answer") from None


def _answer_events(stream: ChatStream, services: ProxyServices, started: float,
                   citations: list[dict], estimated_prompt_tokens: int) -> Iterator[bytes]:
    """Re-emit the gateway's stream as `delta` events, then one `done` event with the summary.

    Runs after the request context has ended, so it receives `services` (and `started`,
    when the request began, for time-to-first-token).
    """
    tenant = services.config.tenant
    parts: list[str] = []
    model, usage = None, None
    try:
        for data in stream:
            if data == DONE:
                break
            chunk = json.loads(data)
            if "error" in chunk:  # the gateway's upstream broke mid-stream and said so in-band
                services.metrics.count_gateway_error("stream_broken")
                yield encode_event({"type": "error", **chunk})
                return
            model = chunk.get("model") or model
            usage = chunk.get("usage") or usage
            text = _delta_text(chunk)
            if text:
                if not parts:
                    services.metrics.time_to_first_token.labels(tenant=tenant).observe(time.perf_counter() - started)
                parts.append(text)
                yield encode_event({"type": "delta", "content": text})
        usage = usage or _estimated_usage(estimated_prompt_tokens, len(parts))
        services.metrics.count_usage(usage)
        yield encode_event({"type": "done", "answer": "".join(parts), "tenant": tenant, "model": model,
                            "backend": stream.headers.get(BACKEND_HEADER), "usage": usage,
                            "citations": citations})
        yield encode_event(DONE)
    except Exception as error:  # the gateway broke mid-stream: say so in-band, the status is already sent
        services.metrics.count_gateway_error("stream_broken")
        yield encode_event({"type": "error", **error_body("upstream_error", f"gateway stream broke: {error}")})
    finally:
        stream.close()


def _estimated_usage(prompt_tokens: int, content_chunks: int) -> dict:
    """The gateway's ledger estimate for a stream without usage: about one token per content chunk."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": content_chunks,
            "total_tokens": prompt_tokens + content_chunks, "estimated": True}


def _delta_text(chunk: dict) -> str:
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    return (choices[0].get("delta") or {}).get("content") or ""

"""`POST /ask`: one question in, the tenant assistant's answer out (JSON or SSE).

Order: validate, guardrails on everything the caller sent, then (with a knowledge base) embed
the question and retrieve the tenant's most similar chunks, which go into the caller's turn as
delimited context (never the system message: app/knowledge/grounding.py) and come back as
`citations` (JSON: in the answer; SSE: in the `done` event). A refused question is never embedded.

The answer comes through the proxy's one way to a completion (app/completions.py), like the OpenAI
routes': its `usage` is the gateway's (the tokens it recorded, marked `"estimated": true` when the
backend reported none), counted in `tenant_proxy_tokens_total` and put on the request's log line
with the backend.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request

from app.completions import Completion, CountedStream, delta_text
from app.knowledge.grounding import Grounding, ground
from app.prompt import ask_messages
from app.request_body import read_json_object
from app.schemas import AskRequest
from app.services import ProxyServices, current_services
from llm_common.errors import ApiError, Refusal, error_body
from llm_common.json_body import validate_model
from llm_common.sse import DONE, STREAM_HEADERS, STREAM_MEDIA_TYPE, encode_event
from tenant_spec.models import TENANT_DEFAULT_MODEL

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
        stream = CountedStream(services, payload)
        response = Response(
            _answer_events(stream, config.tenant, grounding.citations),
            mimetype=STREAM_MEDIA_TYPE,
            headers=STREAM_HEADERS,
        )
        response.call_on_close(stream.close)
        return response
    completion = Completion(services, payload)
    return jsonify(
        {
            "answer": _first_message_text(completion.body),
            "tenant": config.tenant,
            "model": completion.body.get("model"),
            "backend": completion.backend or None,
            "usage": completion.usage,
            "citations": grounding.citations,
        }
    )


def _grounding(services: ProxyServices, ask_request: AskRequest) -> Grounding:
    if services.knowledge is None or not ask_request.knowledge:
        return Grounding()
    return ground(services.knowledge.retrieve(ask_request.question))


def _chat_payload(
    system_prompt: str, tenant_max_tokens: int, ask_request: AskRequest, history: list[dict], grounding: Grounding
) -> dict:
    payload = {
        "model": ask_request.model or TENANT_DEFAULT_MODEL,
        "messages": ask_messages(system_prompt, grounding.question(ask_request.question), history),
        "max_tokens": min(ask_request.max_tokens or tenant_max_tokens, tenant_max_tokens),
    }
    if ask_request.temperature is not None:
        payload["temperature"] = ask_request.temperature
    if ask_request.seed is not None:
        payload["seed"] = ask_request.seed
    return payload


def _first_message_text(completion: dict) -> str:
    try:
        return completion["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise ApiError(502, "the gateway's answer had no message", code="bad_gateway_answer") from None


def _answer_events(stream: CountedStream, tenant: str, citations: list[dict]) -> Iterator[bytes]:
    """Re-emit the gateway's stream as `delta` events, then one `done` event with the summary.

    Runs after the request context has ended: what it needs, it is given.
    """
    parts: list[str] = []
    model = None
    try:
        for _data, chunk in stream.chunks():
            if chunk is None:
                raise ValueError("an event of the gateway's stream is not a JSON object")
            if "error" in chunk:  # the gateway's upstream broke mid-stream and said so in-band
                stream.broke(chunk["error"])
                yield encode_event({"type": "error", **chunk})
                return
            model = chunk.get("model") or model
            text = delta_text(chunk)
            if text:
                parts.append(text)
                yield encode_event({"type": "delta", "content": text})
        yield encode_event(
            {
                "type": "done",
                "answer": "".join(parts),
                "tenant": tenant,
                "model": model,
                "backend": stream.backend or None,
                "usage": stream.usage,
                "citations": citations,
            }
        )
        yield encode_event(DONE)
    except Exception as error:  # the gateway broke mid-stream: say so in-band, the status is already sent
        stream.broke(error)
        yield encode_event(
            {
                "type": "error",
                **error_body("upstream_error", f"gateway stream broke: {error}", request_id=stream.request_id),
            }
        )
    finally:
        stream.close()

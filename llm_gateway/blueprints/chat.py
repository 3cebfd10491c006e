"""OpenAI-compatible routes: chat completions (plain and streamed), embeddings, models."""

from __future__ import annotations

import json
import time
from typing import Iterator, NamedTuple

from flask import Blueprint, Response, current_app, g, jsonify, request

from llm_common.errors import error_body
from llm_common.json_body import read_json_object, validate_model
from llm_common.request_metrics import tenant_identified
from llm_common.schemas import ChatCompletionRequest, EmbeddingRequest
from llm_common.sse import DONE, encode_event
from llm_gateway.backends import ChatStream
from llm_gateway.config import TenantRoute
from llm_gateway.metering import REQUEST_ID_HEADER, Meter
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.services import GatewayServices

BACKEND_HEADER = "X-LLM-Backend"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

blueprint = Blueprint("chat", __name__)


def _services() -> GatewayServices:
    return current_app.extensions["llm_gateway"]


def _authenticated_tenant():
    services = _services()
    g.tenant = services.tenants.authenticate(request)
    tenant_identified()
    return g.tenant


@blueprint.post("/v1/chat/completions")
def chat_completions():
    services = _services()
    tenant = _authenticated_tenant()
    body = read_json_object(request, services.config.max_body_bytes)
    chat = validate_model(ChatCompletionRequest, body)
    payload = {**body, "max_tokens": min(chat.max_tokens or tenant.max_tokens, tenant.max_tokens)}
    meter = services.metering.admit(tenant, payload)
    if chat.stream:
        started = time.perf_counter()
        upstream_payload = meter.stream_payload(payload)  # asks the backend for usage in the last chunk
        backend, stream = meter.call(lambda: services.router.open_chat_stream(tenant, upstream_payload))
        return Response(_relay(stream, services.metrics, _served(services, tenant, backend), started, meter),
                        mimetype="text/event-stream",
                        headers={**STREAM_HEADERS, BACKEND_HEADER: backend, REQUEST_ID_HEADER: meter.request_id})
    backend, reply = meter.call(lambda: services.router.chat(tenant, payload))
    served = _served(services, tenant, backend)
    meter.finish_completion(backend, served.model, reply.content)  # also counts tokens and cost
    response = Response(reply.content, mimetype="application/json",
                        headers={BACKEND_HEADER: backend, REQUEST_ID_HEADER: meter.request_id})
    response.call_on_close(meter.update_counters)
    return response


class Served(NamedTuple):
    """Who a completion is for and what serves it: the labels of its metrics."""
    tenant: str
    backend: str
    model: str


def _served(services: GatewayServices, tenant: TenantRoute, backend: str) -> Served:
    """Count the request against the backend that took it."""
    services.metrics.backend_requests.labels(tenant=tenant.name, backend=backend).inc()
    return Served(tenant.name, backend, services.router.model_for(tenant, backend))


def _usage_of(content: str | bytes) -> dict | None:
    try:
        return json.loads(content).get("usage")
    except (ValueError, AttributeError):  # not a JSON object: pass it on, count nothing
        return None


def _relay(stream: ChatStream, metrics: GatewayMetrics, served: Served, started: float,
           meter: Meter) -> Iterator[bytes]:
    """Pass each upstream chunk on as it arrives; close upstream however the stream ends.

    Runs after the request context is gone, so it is handed what it needs;
    `started` is when the request began, for time-to-first-token. The usage record is
    written before the final `[DONE]` (or when the stream breaks or the caller leaves),
    the shared counters updated after it.
    """
    first = True
    status = "client_closed"
    try:
        for data in stream:
            if first:
                metrics.time_to_first_token.labels(tenant=served.tenant, backend=served.backend).observe(
                    time.perf_counter() - started)
                first = False
            if data == DONE:
                break
            if meter.observe_chunk(data) is not None:
                yield encode_event(data)
        status = "ok"
        meter.finish_stream(served.backend, served.model, status)
        yield encode_event(DONE)
    except Exception as error:  # the upstream broke after bytes were sent: tell the caller in-band
        status = "stream_broken"
        metrics.upstream_errors.labels(backend=served.backend, reason="stream_broken").inc()
        meter.finish_stream(served.backend, served.model, status)
        yield encode_event(error_body("upstream_error", f"{served.backend} stream broke: {error}"))
    finally:
        meter.finish_stream(served.backend, served.model, status)  # no-op when recorded above
        stream.close()
        meter.update_counters()


@blueprint.post("/v1/embeddings")
def embeddings():
    services = _services()
    tenant = _authenticated_tenant()
    body = read_json_object(request, services.config.max_body_bytes)
    validate_model(EmbeddingRequest, body)
    backend, reply = services.router.embeddings(tenant, body)
    services.metrics.backend_requests.labels(tenant=tenant.name, backend=backend).inc()
    model = services.router.embedding_model_for(tenant, backend)
    services.metrics.count_usage(tenant.name, backend, model, _usage_of(reply.content))
    return Response(reply.content, mimetype="application/json", headers={BACKEND_HEADER: backend})


@blueprint.get("/v1/models")
def models():
    """The models this tenant can reach through the configured backends."""
    services = _services()
    tenant = _authenticated_tenant()
    names = {services.router.model_for(tenant, backend.name): backend.name
             for backend in services.router.candidates(tenant)}
    return jsonify({"object": "list", "data": [
        {"id": name, "object": "model", "owned_by": backend, "created": 0} for name, backend in names.items()
    ]})

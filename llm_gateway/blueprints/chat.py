"""OpenAI-compatible routes: chat completions (plain and streamed), embeddings, models.

Each request is checked against the request contract (llm_common/request_contract.py), admitted
(rate limits, budgets, concurrency), sent to the tenant's backend, recorded in the ledger and
settled (counters, lease) once the answer is out, whichever way it ends.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterator, NamedTuple

from flask import Blueprint, Response, current_app, g, jsonify, request

from llm_common.errors import error_body
from llm_common.json_body import contract_error, read_json_object
from llm_common.request_contract import ChatPolicy, ContractViolation, apply_chat_contract, apply_embedding_contract
from llm_common.request_metrics import tenant_identified
from llm_common.sse import DONE, encode_event
from llm_common.tracing import RequestRecord, current_record, current_request_id
from llm_common.usage import estimate_embedding_tokens, estimate_request_prompt_tokens
from llm_gateway.backends import ChatStream, UpstreamReply
from llm_gateway.config import TenantRoute
from llm_gateway.ledger import UsageRecord
from llm_gateway.metering import Meter
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.services import GatewayServices

BACKEND_HEADER = "X-LLM-Backend"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

log = logging.getLogger(__name__)
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
    policy = ChatPolicy(tenant.max_tokens, frozenset(tenant.allowed_request_extensions), caller_sends_system=True)
    try:
        chat = apply_chat_contract(body, policy)
    except ContractViolation as violation:
        raise contract_error(violation) from None
    meter = services.metering.admit(tenant, estimate_request_prompt_tokens(chat.payload), current_request_id())
    if chat.stream:
        return _settled_if_it_fails(meter, lambda: _streamed(services, tenant, meter, chat.payload))
    return _json_answer(meter, lambda: services.router.chat(tenant, chat.payload, meter.request_id),
                        lambda backend: _served(services, tenant, backend).model)


def _json_answer(meter: Meter, call: Callable[[], tuple[str, UpstreamReply]],
                 model_of: Callable[[str], str]) -> Response:
    """Call the backend, record the answer (`model_of(backend)`: the model it counts against), pass it on;
    the request is settled (counters, lease) once the answer is sent, or at once if anything fails."""

    def answer() -> Response:
        backend, reply = meter.call(call)
        _note(current_record(), backend, meter.finish_json(backend, model_of(backend), reply.content))
        response = Response(reply.content, mimetype="application/json", headers={BACKEND_HEADER: backend})
        response.call_on_close(meter.settle)
        return response

    return _settled_if_it_fails(meter, answer)


def _settled_if_it_fails(meter: Meter, build: Callable[[], Response]) -> Response:
    try:
        return build()
    except BaseException:
        meter.settle()
        raise


def _streamed(services: GatewayServices, tenant: TenantRoute, meter: Meter, payload: dict) -> Response:
    started = time.perf_counter()
    upstream_payload = meter.stream_payload(payload)  # asks the backend for usage in the last chunk
    backend, stream = meter.call(lambda: services.router.open_chat_stream(tenant, upstream_payload, meter.request_id))
    relay = StreamRelay(stream, services.metrics, _served(services, tenant, backend), started, meter, current_record())
    response = Response(relay.events(), mimetype="text/event-stream",
                        headers={**STREAM_HEADERS, BACKEND_HEADER: backend})
    response.call_on_close(relay.close)
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


def _note(record: RequestRecord | None, backend: str, usage: UsageRecord | None) -> None:
    """Put the backend and the recorded tokens on the request's log line."""
    if record is None:
        return
    record.backend = backend
    if usage is not None:
        record.prompt_tokens, record.completion_tokens = usage.prompt_tokens, usage.completion_tokens


class StreamRelay:
    """Passes each upstream chunk on as it arrives, and ends the request however the stream ends.

    Runs after the request context is gone, so it is handed what it needs; `started` is when the
    request began, for time-to-first-token. The usage record is written before the final `[DONE]`
    (or when the stream breaks or the caller leaves — even before the first chunk, through
    `close`, which the server calls in every case), the shared counters updated after it.
    """

    def __init__(self, stream: ChatStream, metrics: GatewayMetrics, served: Served, started: float, meter: Meter,
                 record: RequestRecord | None):
        self.stream, self.metrics, self.served, self.started = stream, metrics, served, started
        self.meter, self.record = meter, record

    def events(self) -> Iterator[bytes]:
        first = True
        try:
            for data in self.stream:
                if first:
                    self.metrics.time_to_first_token.labels(tenant=self.served.tenant, backend=self.served.backend) \
                        .observe(time.perf_counter() - self.started)
                    first = False
                if data == DONE:
                    break
                if self.meter.observe_chunk(data) is not None:
                    yield encode_event(data)
            self._finish("ok")
            yield encode_event(DONE)
        except Exception as error:  # the upstream broke after bytes were sent: tell the caller in-band
            self.metrics.upstream_errors.labels(backend=self.served.backend, reason="stream_broken").inc()
            log.warning("[%s] tenant %s: the %s stream broke: %s", self.meter.request_id, self.served.tenant,
                        self.served.backend, error)
            self._finish("stream_broken")
            yield encode_event(error_body("upstream_error", f"the {self.served.backend} stream broke off before the "
                                                            "answer was complete", request_id=self.meter.request_id))

    def close(self) -> None:
        """The response is done (sent, broken, or the caller left): close upstream, record, settle."""
        try:
            self.stream.close()
        finally:
            self._finish("client_closed")  # no-op when recorded above
            self.meter.settle()

    def _finish(self, status: str) -> None:
        usage = self.meter.finish_stream(self.served.backend, self.served.model, status)
        _note(self.record, self.served.backend, usage)


@blueprint.post("/v1/embeddings")
def embeddings():
    """Embeddings are admitted, limited, recorded and budgeted like completions (prompt tokens only)."""
    services = _services()
    tenant = _authenticated_tenant()
    body = read_json_object(request, services.config.max_body_bytes)
    try:
        payload = apply_embedding_contract(body)
    except ContractViolation as violation:
        raise contract_error(violation) from None
    meter = services.metering.admit(tenant, estimate_embedding_tokens(payload["input"]), current_request_id())

    def model_of(backend: str) -> str:
        services.metrics.backend_requests.labels(tenant=tenant.name, backend=backend).inc()
        return services.router.embedding_model_for(tenant, backend)

    return _json_answer(meter, lambda: services.router.embeddings(tenant, payload, meter.request_id), model_of)


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

"""The completion service: what happens to every admitted request, plain, streamed or embedding alike.

    admit (limits, budgets, lease) -> route (router: backend, failover) -> record (ledger row,
    token and cost counters) -> settle (Redis totals, lease back) once the answer is out

Each step runs exactly once per request, whichever way it ends: answered, refused, failed before
any backend answered, broken mid-stream, or left by its caller. The routes (routes/openai_api.py) only
read and check the request and hand it here; they never meter anything themselves.

The answer's `usage` is the one recorded (metering.answered_usage), so the caller, the ledger, the
budgets and the token metrics count the same tokens: in a JSON answer's body, and in a stream's closing
usage chunk, which is sent to callers who asked for it (`stream_options.include_usage`) whether the
backend reported usage or the gateway counted the tokens itself (then marked `"estimated": true`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import anyio

from llm_common.errors import error_body
from llm_common.sse import DONE, encode_event
from llm_common.tracing import RequestRecord
from llm_common.usage import estimate_embedding_tokens, estimate_request_prompt_tokens
from llm_gateway.backends import AsyncChatStream, UpstreamReply
from llm_gateway.ledger import UsageRecord
from llm_gateway.metering import Meter, Metering, answered_usage
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.routing import Attempt, Router
from tenant_spec.route import TenantRoute

log = logging.getLogger(__name__)


@dataclass
class JsonAnswer:
    """A complete answer: its bytes (the backend's JSON with the recorded usage), the backend that produced
    them, and what to run once it is sent."""

    backend: str
    content: bytes
    settle: Callable[[], Awaitable[None]]


@dataclass
class StreamedAnswer:
    """An opened stream: the SSE bytes to send, and `close`, which must run once the response is over
    (sent, broken, or the caller left; before or after the first event alike)."""

    backend: str
    events: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]


class Completions:
    def __init__(self, metering: Metering, router: Router, metrics: GatewayMetrics):
        self.metering, self.router, self.metrics = metering, router, metrics

    async def chat(
        self, tenant: TenantRoute, asked: str | None, payload: dict, request_id: str, record: RequestRecord | None
    ) -> JsonAnswer:
        """`asked`: the model the caller named (None: the tenant's default)."""
        model = self.router.choose(tenant, asked)
        meter = await self.metering.admit(tenant, model, estimate_request_prompt_tokens(payload), request_id)
        return await self._json(meter, record, self.router.chat(tenant, model, payload, request_id))

    async def embeddings(
        self, tenant: TenantRoute, payload: dict, request_id: str, record: RequestRecord | None
    ) -> JsonAnswer:
        """Embeddings are admitted, limited, recorded and budgeted like completions (prompt tokens only)."""
        model = self.router.embedding_model()
        meter = await self.metering.admit(tenant, model, estimate_embedding_tokens(payload["input"]), request_id)
        return await self._json(meter, record, self.router.embeddings(tenant, payload, request_id), embeddings=True)

    async def _json(
        self,
        meter: Meter,
        record: RequestRecord | None,
        call: Awaitable[tuple[Attempt, UpstreamReply]],
        embeddings: bool = False,
    ) -> JsonAnswer:
        try:
            attempt, reply = await meter.call(call)
            backend = attempt.backend.name
            self._count_backend(meter.tenant, backend)
            answer = _json_object(reply.content)
            usage = await meter.finish_json(backend, attempt.model, answer)
            _note(record, backend, usage)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await meter.settle()
            raise
        content = reply.content
        if answer and usage is not None:  # (a body that is not a JSON object goes as it came)
            answer["usage"] = answered_usage(usage, answer.get("usage"), completion_tokens=not embeddings)
            content = _json_bytes(answer)
        return JsonAnswer(backend, content, meter.settle)

    async def stream(
        self, tenant: TenantRoute, asked: str | None, payload: dict, request_id: str, record: RequestRecord | None
    ) -> StreamedAnswer:
        started = time.perf_counter()
        model = self.router.choose(tenant, asked)
        meter = await self.metering.admit(tenant, model, estimate_request_prompt_tokens(payload), request_id)
        try:
            upstream_payload = meter.stream_payload(payload)  # asks the backend for usage in the last chunk
            attempt, stream = await meter.call(
                self.router.open_chat_stream(tenant, model, upstream_payload, request_id)
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await meter.settle()
            raise
        backend = attempt.backend.name
        self._count_backend(tenant, backend)
        relay = _Relay(self.metrics, meter, stream, backend, attempt.model, started, record)
        return StreamedAnswer(backend, relay.events(), relay.close)

    def _count_backend(self, tenant: TenantRoute, backend: str) -> None:
        self.metrics.backend_requests.labels(tenant=tenant.name, backend=backend).inc()


class _Relay:
    """One stream from the backend to the caller: each data payload passed on as it arrives (the backend's
    usage chunk held back), time to first token, usage from the chunks, the ledger row before the final
    events (or at `close` when the caller left first), then settlement.

    The stream ends with the recorded usage chunk (when the caller asked for usage) and `[DONE]`; a
    stream that breaks after bytes were sent ends with an in-band error event, since the status line is
    long gone."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        meter: Meter,
        stream: AsyncChatStream,
        backend: str,
        model: str,
        started: float,
        record: RequestRecord | None,
    ):
        self.metrics, self.meter, self.stream = metrics, meter, stream
        self.backend, self.model, self.started, self.record = backend, model, started, record

    async def events(self) -> AsyncIterator[bytes]:
        first = True
        try:
            async for data in self.stream:
                if first:
                    self._first()
                    first = False
                if data == DONE:
                    break
                passed = self.meter.observe_chunk(data)
                if passed is not None:
                    yield encode_event(passed)
        except Exception as error:  # the backend broke after bytes were sent: tell the caller in-band
            await self._finish("stream_broken")
            yield encode_event(self._broken(error))
            return
        usage = await self._finish("ok")
        if usage is not None and self.meter.include_usage_requested:
            yield encode_event(self.meter.usage_chunk(usage))
        yield encode_event(DONE)

    def _first(self) -> None:
        self.metrics.time_to_first_token.labels(tenant=self.meter.tenant.name, backend=self.backend).observe(
            time.perf_counter() - self.started
        )

    def _broken(self, error: Exception) -> dict:
        self.metrics.upstream_errors.labels(backend=self.backend, reason="stream_broken").inc()
        log.warning(
            "[%s] tenant %s: the %s stream broke: %s",
            self.meter.request_id,
            self.meter.tenant.name,
            self.backend,
            error,
        )
        return error_body(
            "upstream_error",
            f"the {self.backend} stream broke off before the answer was complete",
            request_id=self.meter.request_id,
        )

    async def _finish(self, status: str) -> UsageRecord | None:
        usage = await self.meter.finish_stream(self.backend, self.model, status)
        _note(self.record, self.backend, usage)
        return usage

    async def close(self) -> None:
        """The response is over: free the upstream stream (and its pool slot), record a stream its caller
        left before the end, settle. Shielded: it runs even while the request is being cancelled."""
        with anyio.CancelScope(shield=True):
            try:
                await self.stream.aclose()
            finally:
                if not self.meter.finished:
                    await self._finish("client_closed")
                await self.meter.settle()


def _note(record: RequestRecord | None, backend: str, usage: UsageRecord | None) -> None:
    """Put the backend and the recorded tokens on the request's log line."""
    if record is None:
        return
    record.backend = backend
    if usage is not None:
        record.prompt_tokens, record.completion_tokens = usage.prompt_tokens, usage.completion_tokens


def _json_object(content: bytes) -> dict:
    """A backend's JSON answer as a dict ({} when it is not a JSON object)."""
    try:
        answer = json.loads(content)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _json_bytes(answer: dict) -> bytes:
    try:
        return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate the backend escaped: keep it escaped
        return json.dumps(answer, separators=(",", ":")).encode()

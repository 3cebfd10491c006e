"""Every gateway request observed, as one ASGI middleware around the app (the counterpart of the
tenant proxy's Flask hooks in app/tracing.py and app/request_metrics.py):

- a request id (the caller's well-formed `X-Request-Id`, else a new one), answered in the
  `X-Request-Id` header, and a RequestRecord written as the request's JSON log line once the
  answer's last byte is sent (or the caller left);
- the request metrics: count by route, tenant and status, duration to the last byte, and the
  in-flight gauge, which starts under `unauthenticated` and moves to the tenant when the route
  calls `tenant_identified`;
- `/metrics` only on the metrics port and nothing else there (see `metrics_port`);
- an exception nothing else handled becomes a logged 500 with an OpenAI-shaped body.

Operational routes (`/metrics`, `/healthz`, `/readyz`) are neither counted nor logged.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from llm_common.errors import error_body, internal_error_body
from llm_common.openai_client import REQUEST_ID_HEADER
from llm_common.request_metrics import OPERATIONAL_ROUTES
from llm_common.tracing import UNLOGGED_ROUTES, RequestRecord, accepted_request_id, use_record
from llm_gateway.metrics import UNAUTHENTICATED

log = logging.getLogger(__name__)
_REQUEST_ID_HEADER = REQUEST_ID_HEADER.lower().encode()


@dataclass
class Observed:
    """What the middleware knows of the request being served."""

    route: str
    record: RequestRecord
    in_flight: Gauge
    tenant: str = UNAUTHENTICATED
    gauge: object = None

    def count_in_flight(self) -> None:
        """Count the request in flight under its route and (current) tenant."""
        if self.gauge is not None:
            self.gauge.dec()
        self.gauge = self.in_flight.labels(route=self.route, tenant=self.tenant)
        self.gauge.inc()


_current: ContextVar[Observed | None] = ContextVar("observed_request", default=None)


def current_tenant() -> str:
    """The current request's tenant label (`unauthenticated` until it is known)."""
    observed = _current.get()
    return observed.tenant if observed is not None else UNAUTHENTICATED


def tenant_identified(tenant: str) -> None:
    """The request's tenant is known: label its metrics and log line with it."""
    observed = _current.get()
    if observed is None:
        return
    observed.tenant = tenant
    observed.record.tenant = tenant
    observed.count_in_flight()


class RequestObservation:
    """The ASGI middleware; `routes` are the app's paths (anything else is `unmatched`)."""

    def __init__(
        self,
        app,
        *,
        service: str,
        routes: set[str],
        requests: Counter,
        duration: Histogram,
        in_flight: Gauge,
        metrics_port: int | None = None,
    ):
        self.app, self.service, self.routes = app, service, routes
        self.requests, self.duration, self.in_flight = requests, duration, in_flight
        self.metrics_port = metrics_port

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in self.routes else "unmatched"
        if self.metrics_port is not None and not self._on_its_port(scope, path):
            await _send_json(send, 404, error_body("not_found_error", "Not Found"), None)
            return
        record = RequestRecord(
            self.service, accepted_request_id(_header(scope, _REQUEST_ID_HEADER)), scope["method"], route
        )
        use_record(record)
        counted = route not in OPERATIONAL_ROUTES
        observed = Observed(route, record, self.in_flight)
        if counted:
            _current.set(observed)
            observed.count_in_flight()
        request_id_header = (_REQUEST_ID_HEADER, record.request_id.encode())

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), request_id_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            if record.status is None:
                await _send_json(send, 500, internal_error_body(), record)
        finally:
            if counted:
                self._count(observed)
            if route not in UNLOGGED_ROUTES:
                record.write()

    def _on_its_port(self, scope, path: str) -> bool:
        server = scope.get("server")
        on_metrics_port = server is not None and server[1] == self.metrics_port
        return (path == "/metrics") == on_metrics_port

    def _count(self, observed: Observed) -> None:
        status = observed.record.status or 500
        self.requests.labels(route=observed.route, tenant=observed.tenant, status=str(status)).inc()
        self.duration.labels(route=observed.route, tenant=observed.tenant).observe(
            time.perf_counter() - observed.record.started
        )
        observed.gauge.dec()


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _send_json(send, status: int, body: dict, record: RequestRecord | None) -> None:
    if record is not None:
        record.status = status
    content = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    if record is not None:
        headers.append((_REQUEST_ID_HEADER, record.request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})

"""Per-request counters shared by both services: count, duration (to the last byte), in-flight."""

from __future__ import annotations

import time
from typing import Callable

from flask import Flask, g, request
from prometheus_client import Counter, Gauge, Histogram


def instrument_requests(app: Flask, *, requests: Counter, duration: Histogram, in_flight: Gauge,
                        tenant_label: Callable[[], str]) -> None:
    """Record every request; streamed answers are timed until their last chunk or disconnect."""

    @app.before_request
    def _start() -> None:
        g.metrics_route = request.url_rule.rule if request.url_rule else "unmatched"
        g.metrics_started = time.perf_counter()
        in_flight.labels(route=g.metrics_route).inc()

    @app.after_request
    def _finish(response):
        route, started, tenant = g.metrics_route, g.metrics_started, tenant_label()
        requests.labels(route=route, tenant=tenant, status=str(response.status_code)).inc()

        def record() -> None:
            duration.labels(route=route, tenant=tenant).observe(time.perf_counter() - started)
            in_flight.labels(route=route).dec()

        response.call_on_close(record)
        return response

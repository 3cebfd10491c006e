"""The proxy's per-request metrics as Flask hooks: count, duration (to the last byte), in-flight
(what is counted and why: llm_common/request_metrics.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask, g, request
from prometheus_client import Counter, Gauge, Histogram

from llm_common.request_metrics import OPERATIONAL_ROUTES


def instrument_requests(
    app: Flask, *, requests: Counter, duration: Histogram, in_flight: Gauge, tenant_label: Callable[[], str]
) -> None:
    """Record every request; streamed answers are timed until their last chunk or disconnect."""

    @app.before_request
    def _start() -> None:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        if route in OPERATIONAL_ROUTES:
            return
        g.metrics_route = route
        g.metrics_started = time.perf_counter()
        g.metrics_in_flight = in_flight.labels(route=route, tenant=tenant_label())
        g.metrics_in_flight.inc()

    @app.after_request
    def _finish(response):
        if "metrics_route" not in g:
            return response
        route, started, tenant, gauge = g.metrics_route, g.metrics_started, tenant_label(), g.metrics_in_flight
        requests.labels(route=route, tenant=tenant, status=str(response.status_code)).inc()

        def record() -> None:
            duration.labels(route=route, tenant=tenant).observe(time.perf_counter() - started)
            gauge.dec()

        response.call_on_close(record)
        return response


def counted_routes(app: Flask) -> list[str]:
    """The routes whose requests are counted (every route but the operational ones)."""
    return sorted(
        {
            rule.rule
            for rule in app.url_map.iter_rules()
            if rule.rule not in OPERATIONAL_ROUTES and rule.endpoint != "static"
        }
    )

"""Per-request metrics both services keep: count, duration (to the last byte), in-flight, by route and
tenant (the proxy's Flask hooks are app/request_metrics.py, the gateway's ASGI middleware
llm_gateway/observation.py).

Operational endpoints (`/metrics`, `/healthz`, `/readyz`) are not counted: Prometheus
scrapes and Kubernetes probes would otherwise dominate every tenant's request rate
and pull its latency percentiles down.

`create_series` makes each tenant's series exist at zero from the start: rate() ignores
a series' first sample, so without it a tenant's first requests would never show.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

OPERATIONAL_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})


def create_series(requests: Counter, duration: Histogram, routes: list[str], tenant: str) -> None:
    """A tenant's answered-request count and duration histogram per route, at zero."""
    for route in routes:
        requests.labels(route=route, tenant=tenant, status="200")
        duration.labels(route=route, tenant=tenant)

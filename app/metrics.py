"""Tenant proxy metrics; every series carries the proxy's own tenant name."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from llm_common.metrics_registry import MetricsRegistry
from llm_common.usage import token_counts

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ProxyMetrics:
    def __init__(self, registry: MetricsRegistry):
        r = registry.for_new_metrics
        self.requests = Counter(
            "tenant_proxy_requests_total", "Requests answered, by route, tenant and HTTP status.",
            ["route", "tenant", "status"], registry=r)
        self.request_duration = Histogram(
            "tenant_proxy_request_duration_seconds", "Time to the full answer (streams: to the last byte).",
            ["route", "tenant"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge(
            "tenant_proxy_in_flight_requests", "Requests being answered now.",
            ["route"], multiprocess_mode="livesum", registry=r)
        self.time_to_first_token = Histogram(
            "tenant_proxy_time_to_first_token_seconds", "Streams: time until the first answer text is sent.",
            ["tenant"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter(
            "tenant_proxy_tokens_total", "Tokens used by this tenant, by kind (prompt|completion).",
            ["tenant", "kind"], registry=r)
        self.refusals = Counter(
            "tenant_proxy_refusals_total", "Requests refused by the proxy's policies (guardrails, limits), by reason.",
            ["tenant", "reason"], registry=r)

    def count_refusal(self, tenant: str, reason: str) -> None:
        self.refusals.labels(tenant=tenant, reason=reason).inc()

    def count_usage(self, tenant: str, usage: dict | None) -> None:
        """Add a completion's reported `usage` to the token counters (absent usage adds nothing)."""
        for kind, count in token_counts(usage):
            self.tokens.labels(tenant=tenant, kind=kind).inc(count)

"""Gateway metrics. Labels are bounded: tenant names come from config, never from callers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from llm_common.metrics_registry import MetricsRegistry
from llm_common.usage import token_counts

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
UNAUTHENTICATED = "unauthenticated"


class GatewayMetrics:
    def __init__(self, registry: MetricsRegistry):
        r = registry.for_new_metrics
        self.requests = Counter(
            "llm_gateway_requests_total", "Requests answered, by route, tenant and HTTP status.",
            ["route", "tenant", "status"], registry=r)
        self.request_duration = Histogram(
            "llm_gateway_request_duration_seconds", "Time to the full answer (streams: to the last byte).",
            ["route", "tenant"], buckets=LATENCY_BUCKETS, registry=r)
        self.time_to_first_token = Histogram(
            "llm_gateway_time_to_first_token_seconds", "Streams: time until the first chunk is sent.",
            ["tenant", "backend"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter(
            "llm_gateway_tokens_total", "Tokens reported by the backend, by kind (prompt|completion).",
            ["tenant", "backend", "kind"], registry=r)
        self.backend_requests = Counter(
            "llm_gateway_backend_requests_total", "Requests served, by the backend that served them.",
            ["tenant", "backend"], registry=r)
        self.upstream_errors = Counter(
            "llm_gateway_upstream_errors_total", "Failed calls to a backend, by reason.",
            ["backend", "reason"], registry=r)
        self.in_flight = Gauge(
            "llm_gateway_in_flight_requests", "Requests being answered now.",
            ["route"], multiprocess_mode="livesum", registry=r)
        self.member_up = Gauge(
            "llm_gateway_pool_member_up", "1 when a pool member is healthy and not ejected.",
            ["backend", "member"], multiprocess_mode="livemin", registry=r)
        self.member_in_flight = Gauge(
            "llm_gateway_pool_member_in_flight_requests", "Outstanding requests per pool member.",
            ["backend", "member"], multiprocess_mode="livesum", registry=r)
        self.member_latency = Histogram(
            "llm_gateway_pool_member_latency_seconds",
            "Time until a member answered (streams: until the stream opened).",
            ["backend", "member"], buckets=LATENCY_BUCKETS, registry=r)
        # Tenant controls (limits.py, budgets.py, ledger/)
        self.refusals = Counter(
            "llm_gateway_refusals_total", "Requests refused by policy (rate limit, budget), by reason.",
            ["tenant", "reason"], registry=r)
        self.budget_remaining = Gauge(
            "llm_gateway_budget_remaining", "What is left of the tenant's monthly budget, by kind (tokens|usd).",
            ["tenant", "kind"], multiprocess_mode="mostrecent", registry=r)
        self.limiter_unavailable = Counter(
            "llm_gateway_limiter_unavailable_total",
            "Requests decided without Redis (unreachable): allowed unchecked or denied, per on_redis_error.",
            ["tenant", "decision"], registry=r)
        self.ledger_errors = Counter(
            "llm_gateway_ledger_errors_total", "Usage records that could not be written to the ledger.",
            ["tenant"], registry=r)

    def count_usage(self, tenant: str, backend: str, usage: dict | None) -> None:
        """Add a completion's reported `usage` to the token counters (absent usage adds nothing)."""
        for kind, count in token_counts(usage):
            self.tokens.labels(tenant=tenant, backend=backend, kind=kind).inc(count)

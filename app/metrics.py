"""Tenant proxy metrics, served at `/metrics`; every series carries the proxy's own tenant name."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram

from app.guardrails import GUARDRAIL_REASONS
from llm_common.metrics_registry import LATENCY_BUCKETS, MetricsRegistry
from llm_common.openai_client import FAILURE_REASONS
from llm_common.usage import TOKEN_KINDS, token_counts

# Why the proxy refuses a request (the `reason` label and the error `code`).
REFUSAL_REASONS = ("system_prompt_locked", "question_too_long", "history_too_long", *GUARDRAIL_REASONS)


class ProxyMetrics:
    def __init__(self, registry: MetricsRegistry, tenant: str):
        self.tenant = tenant
        r = registry.for_new_metrics
        self.requests = Counter(
            "tenant_proxy_requests_total",
            "Requests answered, by route, tenant and HTTP status.",
            ["route", "tenant", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "tenant_proxy_request_duration_seconds",
            "Time to the full answer (streams: to the last byte).",
            ["route", "tenant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "tenant_proxy_in_flight_requests",
            "Requests being answered now.",
            ["route", "tenant"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.time_to_first_token = Histogram(
            "tenant_proxy_time_to_first_token_seconds",
            "Streams: time until the first answer text is sent.",
            ["tenant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "tenant_proxy_tokens_total",
            "Tokens used by this tenant, by kind (prompt|completion).",
            ["tenant", "kind"],
            registry=r,
        )
        self.refusals = Counter(
            "tenant_proxy_refusals_total",
            "Requests refused by the proxy's policies (guardrails, limits), by reason.",
            ["tenant", "reason"],
            registry=r,
        )
        self.gateway_errors = Counter(
            "tenant_proxy_gateway_errors_total",
            "Calls to the gateway that failed (unreachable, 5xx, broken stream), by reason.",
            ["tenant", "reason"],
            registry=r,
        )
        self._create_series()

    def _create_series(self) -> None:
        """The tenant's series at zero, so its first tokens, refusals or errors show in rate()."""
        self.time_to_first_token.labels(tenant=self.tenant)
        for kind in TOKEN_KINDS:
            self.tokens.labels(tenant=self.tenant, kind=kind)
        for reason in REFUSAL_REASONS:
            self.refusals.labels(tenant=self.tenant, reason=reason)
        for reason in FAILURE_REASONS:
            self.gateway_errors.labels(tenant=self.tenant, reason=reason)

    def count_usage(self, usage: dict | None) -> None:
        """Add a completion's reported `usage` to the token counters (absent usage adds nothing)."""
        for kind, count in token_counts(usage):
            self.tokens.labels(tenant=self.tenant, kind=kind).inc(count)

    def count_refusal(self, reason: str) -> None:
        self.refusals.labels(tenant=self.tenant, reason=reason).inc()

    def count_gateway_error(self, reason: str) -> None:
        self.gateway_errors.labels(tenant=self.tenant, reason=reason).inc()


def metrics_blueprint(registry: MetricsRegistry) -> Blueprint:
    blueprint = Blueprint("metrics", __name__)

    @blueprint.get("/metrics")
    def metrics() -> Response:
        return Response(registry.render(), mimetype=CONTENT_TYPE_LATEST)

    return blueprint

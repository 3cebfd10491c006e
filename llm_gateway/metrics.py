"""Gateway metrics. Labels are bounded: tenant names, backends, pool members and models come
from config, reasons from our code; nothing a caller sends becomes a label value."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from llm_common.metrics_registry import LATENCY_BUCKETS, MetricsRegistry
from llm_common.openai_client import FAILURE_REASONS
from llm_common.usage import TOKEN_KINDS
from tenant_spec.route import TenantRoute

UNAUTHENTICATED = "unauthenticated"


class GatewayMetrics:
    def __init__(self, registry: MetricsRegistry):
        r = registry.for_new_metrics
        self.requests = Counter(
            "llm_gateway_requests_total",
            "Requests answered, by route, tenant and HTTP status.",
            ["route", "tenant", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "llm_gateway_request_duration_seconds",
            "Time to the full answer (streams: to the last byte).",
            ["route", "tenant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = Histogram(
            "llm_gateway_time_to_first_token_seconds",
            "Streams: time until the first chunk is sent.",
            ["tenant", "backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "llm_gateway_tokens_total",
            "Tokens recorded, by catalogue model and kind (prompt|completion).",
            ["tenant", "backend", "model", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "llm_gateway_cost_usd_total",
            "Estimated cost of the tokens used, in US dollars, at the catalogue's prices.",
            ["tenant", "backend", "model"],
            registry=r,
        )
        self.monthly_budget = Gauge(
            "llm_gateway_tenant_monthly_budget_usd",
            "The tenant's monthly budget in US dollars, from its spec.",
            ["tenant"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.refusals = Counter(
            "llm_gateway_refusals_total",
            "Requests refused by policy (rate limit, budget), by reason.",
            ["tenant", "reason"],
            registry=r,
        )
        self.backend_requests = Counter(
            "llm_gateway_backend_requests_total",
            "Requests served, by the backend that served them.",
            ["tenant", "backend"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "llm_gateway_upstream_errors_total",
            "Failed calls to a backend, by reason.",
            ["backend", "reason"],
            registry=r,
        )
        self.in_flight = Gauge(
            "llm_gateway_in_flight_requests",
            "Requests being answered now.",
            ["route", "tenant"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.member_up = Gauge(
            "llm_gateway_pool_member_up",
            "1 when a pool member is healthy and not ejected.",
            ["backend", "member"],
            multiprocess_mode="livemin",
            registry=r,
        )
        self.member_in_flight = Gauge(
            "llm_gateway_pool_member_in_flight_requests",
            "Outstanding requests per pool member.",
            ["backend", "member"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.member_latency = Histogram(
            "llm_gateway_pool_member_latency_seconds",
            "Time until a member answered (streams: until the stream opened).",
            ["backend", "member"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # Fair sharing of a saturated pool (fair_queue.py)
        self.queue_depth = Gauge(
            "llm_gateway_pool_queue_depth",
            "Requests waiting for a slot of a full pool, by tenant.",
            ["tenant", "backend"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.queue_wait = Histogram(
            "llm_gateway_pool_queue_wait_seconds",
            "Time requests waited for a slot of a full pool (granted or not).",
            ["tenant", "backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # One admission for a pool across every gateway process (pool_admission.py)
        self.admission_fallback = Counter(
            "llm_gateway_pool_admission_fallback_total",
            "Requests admitted to a pool by this process's own queue because Redis could not be asked.",
            ["backend"],
            registry=r,
        )
        self.member_unleased = Gauge(
            "llm_gateway_pool_member_unleased_sequences",
            "Sequences a vLLM member runs or queues beyond the slots leased on it (taken off its free slots).",
            ["backend", "member"],
            multiprocess_mode="livemax",
            registry=r,
        )
        # Tenant controls (limits.py, budgets.py, ledger/); their refusals are counted in `refusals` above
        self.budget_remaining = Gauge(
            "llm_gateway_budget_remaining",
            "What is left of the tenant's monthly budget, by kind (tokens|usd).",
            ["tenant", "kind"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.limiter_unavailable = Counter(
            "llm_gateway_limiter_unavailable_total",
            "Requests decided without Redis (unreachable): allowed unchecked or denied, per on_redis_error.",
            ["tenant", "decision"],
            registry=r,
        )
        self.ledger_errors = Counter(
            "llm_gateway_ledger_errors_total",
            "Usage records that could not be written to the ledger.",
            ["tenant"],
            registry=r,
        )

    def publish_tenant(self, tenant: TenantRoute, models: dict[str, str]) -> None:
        """Export the tenant's budget, and create its series at zero for each model it may use
        (`models`: catalogue model -> its backend), so that its first requests show in rate()."""
        if tenant.monthly_budget_usd is not None:
            self.monthly_budget.labels(tenant=tenant.name).set(tenant.monthly_budget_usd)
        for model, backend in models.items():
            self.backend_requests.labels(tenant=tenant.name, backend=backend)
            self.time_to_first_token.labels(tenant=tenant.name, backend=backend)
            self.cost.labels(tenant=tenant.name, backend=backend, model=model)
            for kind in TOKEN_KINDS:
                self.tokens.labels(tenant=tenant.name, backend=backend, model=model, kind=kind)

    def publish_backend(self, backend: str) -> None:
        """Create the backend's error series at zero, so its first failure shows in rate()."""
        for reason in FAILURE_REASONS:
            self.upstream_errors.labels(backend=backend, reason=reason)

    def count_tokens(self, tenant: str, backend: str, model: str, tokens: dict[str, int], cost_usd: float) -> None:
        """Add {"prompt": n, "completion": n} tokens and their cost (priced once, by the caller) to the counters.

        `model` is the catalogue's name (bounded), not the one the backend echoes back.
        """
        if not tokens:
            return
        for kind, count in tokens.items():
            self.tokens.labels(tenant=tenant, backend=backend, model=model, kind=kind).inc(count)
        if cost_usd:
            self.cost.labels(tenant=tenant, backend=backend, model=model).inc(cost_usd)

"""What each dashboard shows: rows of panels, each with a title, a unit and PromQL targets.

Three dashboards: the platform overview (gateway, backends, pool members, model
servers), the tenants comparison, and one per tenant. Per-tenant queries select
`tenant="<name>"` on every series and keep the `tenant` label in their results, so
a tenant's dashboard can only ever show that tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.promql import quantile, rate, ratio, selector, sum_by, tenant_matcher

# Grafana unit ids (https://grafana.com/docs/grafana/latest/panels-visualizations/configure-standard-options/)
REQUESTS_PER_SECOND = "reqps"
SECONDS = "s"
RATIO = "percentunit"
USD = "currencyUSD"
TOKENS_PER_SECOND = "suffix: tokens/s"
COUNT = "short"
UP = "bool_on_off"

# Panels in a row with this title need kube-state-metrics, which only the cluster has.
CLUSTER_ONLY_ROW = "Cluster mode (kube-state-metrics)"

PROXY_REQUESTS = "tenant_proxy_requests_total"
PROXY_DURATION = "tenant_proxy_request_duration_seconds"
PROXY_TTFT = "tenant_proxy_time_to_first_token_seconds"
COST = "llm_gateway_cost_usd_total"
BUDGET = "llm_gateway_tenant_monthly_budget_usd"
# Refusals happen in the proxy (guardrails, limits) and in the gateway (rate limits, budgets).
REFUSALS = '__name__=~"tenant_proxy_refusals_total|llm_gateway_refusals_total"'
SERVER_ERROR, CLIENT_ERROR = 'status=~"5.."', 'status=~"4.."'
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    targets: tuple[Target, ...]
    description: str
    kind: str = "timeseries"  # or "stat"


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]

    @property
    def cluster_only(self) -> bool:
        return self.title == CLUSTER_ONLY_ROW


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    rows: tuple[Row, ...]


def panel(title: str, unit: str, description: str, *targets: tuple[str, str], kind: str = "timeseries") -> Panel:
    return Panel(title, unit, tuple(Target(expr, legend) for expr, legend in targets), description, kind)


# --- shared by the per-tenant dashboard (one tenant) and the comparison (every tenant) ---------


def _request_rate(by: str, scope: tuple[str, ...], legend: str) -> Panel:
    return panel(
        "Request rate",
        REQUESTS_PER_SECOND,
        "Requests answered by the tenant proxy.",
        (sum_by(by, rate(PROXY_REQUESTS, *scope)), legend),
    )


def _error_ratio(scope: tuple[str, ...], legend_prefix: str, *, with_client_errors: bool) -> Panel:
    whole = sum_by("tenant", rate(PROXY_REQUESTS, *scope))
    targets = [(ratio(sum_by("tenant", rate(PROXY_REQUESTS, *scope, SERVER_ERROR)), whole), f"{legend_prefix}5xx")]
    if with_client_errors:
        targets.append(
            (ratio(sum_by("tenant", rate(PROXY_REQUESTS, *scope, CLIENT_ERROR)), whole), f"{legend_prefix}4xx")
        )
    return panel(
        "Error ratio",
        RATIO,
        "Share of answers with a 5xx status (the alerting signal) and, "
        "where shown, a 4xx status (bad input and refusals).",
        *targets,
    )


def _latency(
    title: str, histogram: str, description: str, scope: tuple[str, ...], quantiles: tuple[float, ...], legend: str
) -> Panel:
    targets = [(quantile(q, histogram, "tenant", *scope), legend.format(q=f"p{round(q * 100)}")) for q in quantiles]
    return panel(title, SECONDS, description, *targets)


def _cost(by: str, scope: tuple[str, ...], legend: str) -> Panel:
    return panel(
        "Estimated cost per hour",
        USD,
        "Tokens times the gateway's per-model price table, as US dollars per hour.",
        (f"{sum_by(by, rate(COST, *scope))} * 3600", legend),
    )


def _budget_spent(scope: tuple[str, ...], legend: str) -> Panel:
    spent = sum_by("tenant", f"increase({selector(COST, *scope)}[30d])")
    budget = f"max by (tenant) ({selector(BUDGET, *scope)})"
    return panel(
        "Budget spent, last 30 days",
        RATIO,
        "Estimated cost over the last 30 days against the monthly budget in the tenant's spec; "
        "the TenantBudgetNearlySpent alert fires at 80 %.",
        (f"({spent} or 0 * {budget}) / {budget}", legend),
        kind="stat",
    )


def _refusals(by: str, scope: tuple[str, ...], legend: str) -> Panel:
    return panel(
        "Refusals",
        REQUESTS_PER_SECOND,
        "Requests refused by policy, by reason: proxy guardrails and limits, gateway rate limits.",
        (sum_by(by, rate("", REFUSALS, *scope)), legend),
    )


# --- the three dashboards ------------------------------------------------------------------------


def tenant_dashboard(tenant: str) -> Dashboard:
    """One tenant's dashboard; `tenant` may be the TENANT_PLACEHOLDER of the template."""
    scope = tenant_matcher(tenant)
    traffic = Row(
        "Traffic",
        (
            _request_rate("tenant, status", scope, "{{status}}"),
            _error_ratio(scope, "", with_client_errors=True),
            _latency(
                "Latency (p50 / p95 / p99)",
                PROXY_DURATION,
                "Time to the full answer at the tenant proxy (streams: to the last byte).",
                scope,
                QUANTILES,
                "{q}",
            ),
            _latency(
                "Time to first token (p50 / p95 / p99)",
                PROXY_TTFT,
                "Streamed answers: time until the first answer text reaches the caller.",
                scope,
                QUANTILES,
                "{q}",
            ),
            panel(
                "Requests in flight",
                COUNT,
                "Requests the tenant proxy is answering now.",
                (sum_by("tenant", selector("tenant_proxy_in_flight_requests", *scope)), "in flight"),
            ),
            panel(
                "Gateway errors seen by the proxy",
                REQUESTS_PER_SECOND,
                "Calls from the tenant proxy to the shared gateway that failed, by reason.",
                (sum_by("tenant, reason", rate("tenant_proxy_gateway_errors_total", *scope)), "{{reason}}"),
            ),
        ),
    )
    usage = Row(
        "Usage, cost and refusals",
        (
            panel(
                "Tokens per second",
                TOKENS_PER_SECOND,
                "Prompt and completion tokens the gateway recorded, by catalogue model (estimated where a backend "
                "reports none).",
                (sum_by("tenant, model, kind", rate("llm_gateway_tokens_total", *scope)), "{{model}} {{kind}}"),
            ),
            _cost("tenant, model", scope, "{{model}}"),
            _budget_spent(scope, "spent"),
            _refusals("tenant, reason", scope, "{{reason}}"),
            panel(
                "Requests by backend",
                REQUESTS_PER_SECOND,
                "Which backend served the tenant: a self-hosted model's own pool (named after the model) or OpenAI.",
                (sum_by("tenant, backend", rate("llm_gateway_backend_requests_total", *scope)), "{{backend}}"),
            ),
        ),
    )
    quota = Row(
        CLUSTER_ONLY_ROW,
        (
            panel(
                "Namespace quota usage",
                RATIO,
                "Used over hard limit of the tenant namespace's ResourceQuota (kube-state-metrics; cluster mode).",
                (
                    f'max by (namespace, resource) (kube_resourcequota{{namespace="{tenant}", type="used"}})'
                    f' / max by (namespace, resource) (kube_resourcequota{{namespace="{tenant}", type="hard"}})',
                    "{{resource}}",
                ),
            ),
        ),
    )
    return Dashboard(
        uid=tenant,
        title=f"LLM tenant {tenant}",
        description=f"Requests, errors, latency, tokens, cost and refusals of tenant {tenant}.",
        tags=("llm-tenants", "tenant"),
        rows=(traffic, usage, quota),
    )


def tenants_comparison() -> Dashboard:
    scope: tuple[str, ...] = ()
    row = Row(
        "Tenants side by side",
        (
            _request_rate("tenant", scope, "{{tenant}}"),
            _error_ratio(scope, "{{tenant}} ", with_client_errors=False),
            _latency(
                "Latency p95",
                PROXY_DURATION,
                "Time to the full answer at each tenant proxy.",
                scope,
                (0.95,),
                "{{tenant}}",
            ),
            _latency(
                "Time to first token p95",
                PROXY_TTFT,
                "Streamed answers: time to the first answer text.",
                scope,
                (0.95,),
                "{{tenant}}",
            ),
            panel(
                "Tokens per second",
                TOKENS_PER_SECOND,
                "Prompt plus completion tokens per tenant.",
                (sum_by("tenant", rate("llm_gateway_tokens_total")), "{{tenant}}"),
            ),
            _cost("tenant", scope, "{{tenant}}"),
            _budget_spent(scope, "{{tenant}}"),
            _refusals("tenant", scope, "{{tenant}}"),
        ),
    )
    return Dashboard(
        uid="llm_tenants_comparison",
        title="LLM tenants comparison",
        description="Every tenant side by side.",
        tags=("llm-tenants",),
        rows=(row,),
    )


def platform_overview() -> Dashboard:
    gateway = Row(
        "Gateway",
        (
            panel(
                "Gateway requests by status",
                REQUESTS_PER_SECOND,
                "Every request the shared gateway answered.",
                (sum_by("status", rate("llm_gateway_requests_total")), "{{status}}"),
            ),
            panel(
                "Gateway latency (p50 / p95 / p99)",
                SECONDS,
                "Time to the full answer at the gateway.",
                *[(quantile(q, "llm_gateway_request_duration_seconds", ""), f"p{round(q * 100)}") for q in QUANTILES],
            ),
            panel(
                "Time to first token p95 by backend",
                SECONDS,
                "Streams: time until the gateway sends the first chunk.",
                (quantile(0.95, "llm_gateway_time_to_first_token_seconds", "backend"), "{{backend}}"),
            ),
            panel(
                "Requests in flight by tenant",
                COUNT,
                "Requests the gateway is answering now.",
                (sum_by("tenant", "llm_gateway_in_flight_requests"), "{{tenant}}"),
            ),
            panel(
                "Tokens per second by model",
                TOKENS_PER_SECOND,
                "Tokens recorded per catalogue model (estimated where a backend reports none).",
                (sum_by("model, kind", rate("llm_gateway_tokens_total")), "{{model}} {{kind}}"),
            ),
            _cost("model", (), "{{model}}"),
        ),
    )
    backends = Row(
        "Backends and pool members",
        (
            panel(
                "Backend up",
                UP,
                "1 while at least one member of the backend is usable; "
                "the LLMGatewayBackendDown alert fires when it stays 0.",
                ("max by (backend) (llm_gateway_pool_member_up)", "{{backend}}"),
            ),
            panel(
                "Requests by backend",
                REQUESTS_PER_SECOND,
                "Requests each backend served.",
                (sum_by("backend", rate("llm_gateway_backend_requests_total")), "{{backend}}"),
            ),
            panel(
                "Upstream errors by backend and reason",
                REQUESTS_PER_SECOND,
                "Failed calls from the gateway to a backend (each failure ejects a pool member for a while).",
                (sum_by("backend, reason", rate("llm_gateway_upstream_errors_total")), "{{backend}} {{reason}}"),
            ),
            panel(
                "Pool member up",
                UP,
                "1 when healthy and not ejected, in every gateway worker.",
                ("min by (backend, member) (llm_gateway_pool_member_up)", "{{member}}"),
            ),
            panel(
                "Pool member in-flight requests",
                COUNT,
                "Outstanding requests per member (least-outstanding routing).",
                (sum_by("backend, member", "llm_gateway_pool_member_in_flight_requests"), "{{member}}"),
            ),
            panel(
                "Pool member latency p95",
                SECONDS,
                "Time until a member answered (streams: until the stream opened).",
                (quantile(0.95, "llm_gateway_pool_member_latency_seconds", "backend, member"), "{{member}}"),
            ),
        ),
    )
    # Locally the embedded model server exports model_server_*; a vLLM pool exports vllm:*.
    models = Row(
        "Model servers",
        (
            panel(
                "Model server requests",
                REQUESTS_PER_SECOND,
                "Requests the model servers answered.",
                (
                    f"{sum_by('status', rate('model_server_requests_total'))} "
                    f"or {sum_by('finished_reason', rate('vllm:request_success_total'))}",
                    "{{status}}{{finished_reason}}",
                ),
            ),
            panel(
                "Model server latency p95",
                SECONDS,
                "Time to the full answer at the model servers.",
                (
                    f"{quantile(0.95, 'model_server_request_duration_seconds', '')} "
                    f"or {quantile(0.95, 'vllm:e2e_request_latency_seconds', '')}",
                    "p95",
                ),
            ),
            panel(
                "Model server requests in progress",
                COUNT,
                "Requests generating or waiting for the model.",
                (
                    "sum(model_server_in_flight_requests) "
                    "or sum(vllm:num_requests_running) + sum(vllm:num_requests_waiting)",
                    "in progress",
                ),
            ),
        ),
    )
    return Dashboard(
        uid="llm_platform_overview",
        title="LLM platform overview",
        description="The shared gateway, its backends and pool members, and the model servers.",
        tags=("llm-tenants",),
        rows=(gateway, backends, models),
    )

"""Every PromQL expression of every panel of every generated dashboard, run through a real
Prometheus after real traffic (tests/traffic.py): each returns data, and a tenant's
dashboard returns only that tenant's series."""

from __future__ import annotations

import json
import math

import httpx
import pytest
import yaml

from dashboards import ALERT_RULES_FILE, GENERATED_DIR
from dashboards.generate import tenant_dashboard_json
from dashboards.reading import dashboard_panels, for_prometheus
from tenant_spec.models import DEFAULT_MODEL
from tests.helpers import TEST_BUDGETS_USD

DASHBOARD_FILES = [
    "platform-overview.json",
    "tenants-comparison.json",
    "tenant-acme-corp.json",
    "tenant-closed-ai.json",
]


def load(name: str) -> dict:
    """A committed dashboard, or (tenant-<name>.json) the tenant's, rendered from the template."""
    if (GENERATED_DIR / name).is_file():
        return json.loads((GENERATED_DIR / name).read_text())
    return json.loads(tenant_dashboard_json(name.removeprefix("tenant-").removesuffix(".json")))


def panel_results(observed, dashboard: dict):
    """(panel, expr, result) for every target of every panel that can have data here.

    Cluster-only panels are left out: they read kube-state-metrics' kube_resourcequota,
    which exists only on a cluster. test_generated.py checks their query with promtool
    against series in kube-state-metrics' format instead.
    """
    for panel in dashboard_panels(dashboard):
        if panel.cluster_only:
            continue
        for expr, _ in panel.targets:
            yield panel, expr, observed.query(for_prometheus(expr, observed.window))


# Gauges of what is happening right now: 0 once the traffic is over, which is right.
ZERO_AT_REST = {
    "Requests in flight",
    "Requests in flight by tenant",
    "Pool member in-flight requests",
    "Model server requests in progress",
}


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_panel_query_returns_data(observed_platform, name):
    """Each target returns series with a number; each panel shows something other than the
    zeros our services create at start (over a window covering all the traffic)."""
    empty, flat = [], []
    for panel, expr, result in panel_results(observed_platform, load(name)):
        values = [float(series["value"][1]) for series in result]
        if not any(math.isfinite(value) for value in values):
            empty.append(f"{panel.title}: {expr} -> {values}")
        elif panel.title not in ZERO_AT_REST and not any(math.isfinite(v) and v > 0 for v in values):
            flat.append(f"{panel.title}: {expr} -> {values}")
    assert empty == []
    assert flat == []


@pytest.mark.parametrize("tenant", ["acme-corp", "closed-ai"])
def test_tenant_dashboard_returns_only_its_tenant(observed_platform, tenant):
    seen = set()
    for panel, expr, result in panel_results(observed_platform, load(f"tenant-{tenant}.json")):
        for series in result:
            seen.add(series["metric"].get("tenant"))
            assert series["metric"].get("tenant") == tenant, f"{panel.title}: {expr} -> {series['metric']}"
    assert seen == {tenant}
    assert len(observed_platform.tenants) == 2  # the other tenant had traffic too, and was not shown


def value_by(results: list[dict], label: str) -> dict[str, float]:
    return {series["metric"][label]: float(series["value"][1]) for series in results}


def test_prometheus_counted_exactly_what_was_sent(observed_platform):
    """Across two gunicorn workers per service: every request and every refusal, exactly once."""
    counted = observed_platform.query("sum by (tenant, status) (tenant_proxy_requests_total)")
    assert {(s["metric"]["tenant"], s["metric"]["status"]): int(float(s["value"][1])) for s in counted} == dict(
        observed_platform.sent
    )
    refusals = observed_platform.query("sum by (tenant, reason) (tenant_proxy_refusals_total) > 0")
    assert {(s["metric"]["tenant"], s["metric"]["reason"]): int(float(s["value"][1])) for s in refusals} == dict(
        observed_platform.refused
    )


def test_panels_show_the_outage_cost_and_tokens(observed_platform):
    window = observed_platform.window
    errors = value_by(
        observed_platform.query(f'sum by (tenant) (increase(tenant_proxy_requests_total{{status="503"}}[{window}]))'),
        "tenant",
    )
    assert set(errors) == set(observed_platform.tenants) and all(value > 0 for value in errors.values())
    upstream = observed_platform.query(f"sum by (backend) (increase(llm_gateway_upstream_errors_total[{window}]))")
    assert value_by(upstream, "backend")[DEFAULT_MODEL] > 0  # the pool of the model whose server was stopped
    cost = value_by(observed_platform.query("sum by (tenant) (llm_gateway_cost_usd_total)"), "tenant")
    assert set(cost) == set(observed_platform.tenants) and all(value > 0 for value in cost.values())
    budget = value_by(observed_platform.query("max by (tenant) (llm_gateway_tenant_monthly_budget_usd)"), "tenant")
    assert budget == TEST_BUDGETS_USD  # from the tenant specs
    served = observed_platform.query("sum(model_server_requests_total)")
    assert float(served[0]["value"][1]) > 0


def test_backend_down_alert_went_off_during_the_outage(observed_platform):
    assert [alert["backend"] for alert in observed_platform.alerts_during_outage] == [DEFAULT_MODEL]
    assert observed_platform.alerts_during_outage[0]["alertstate"] in ("pending", "firing")


def test_prometheus_scrapes_every_service_with_the_rules_loaded(observed_platform):
    url = observed_platform.prometheus_url
    targets = httpx.get(url + "/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    model_servers = len(observed_platform.running.platform.model_urls())  # one per cpu model of the catalogue
    assert model_servers == 3
    assert sorted(t["labels"]["job"] for t in targets) == [
        "llm-gateway",
        *["model-server"] * model_servers,
        "tenant-proxy",
        "tenant-proxy",
        "tenantctl",
    ]
    assert all(t["health"] == "up" for t in targets), targets
    groups = httpx.get(url + "/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    written = {
        rule.get("alert") or rule["record"]
        for group in yaml.safe_load(ALERT_RULES_FILE.read_text())["groups"]
        for rule in group["rules"]
    }
    assert set(loaded) == written
    assert set(loaded.values()) == {"ok"}

"""The gateway's series exist at zero from the start, only for what each tenant can use."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from llm_common.catalogue import CatalogueModel
from llm_gateway import create_app
from llm_gateway.auth import hash_gateway_key
from llm_gateway.config import GatewayConfig, OpenAIConfig, PoolConfig
from tenant_spec.models import TenantModels
from tenant_spec.route import TenantRoute
from tenantctl.local import launchers
from tests.helpers import chat, controlled_gateway_config, free_port, metric_value, tenant_route


def test_known_tenants_have_their_series_at_zero_from_the_start():
    dead = f"http://127.0.0.1:{free_port()}"
    config = GatewayConfig(
        tenants=[
            TenantRoute(
                name="only-m1",
                models=TenantModels(allowed=["m1"]),
                key_sha256=[hash_gateway_key("a")],
                monthly_budget_usd=5,
            ),
            TenantRoute(
                name="both", models=TenantModels(allowed=["m2", "gpt-4o-mini"]), key_sha256=[hash_gateway_key("b")]
            ),
        ],
        models={
            "m1": CatalogueModel(engine="cpu", source="m1.gguf"),
            "m2": CatalogueModel(engine="cpu", source="m2.gguf"),
            "gpt-4o-mini": CatalogueModel(engine="openai"),
        },
        pools={name: PoolConfig(endpoints=[dead], health_interval_seconds=60) for name in ("m1", "m2")},
        openai=OpenAIConfig(api_key="sk-unused", base_url=dead + "/v1"),
    )
    with TestClient(create_app(config)) as client:
        text = client.get("/metrics").text
    assert 'llm_gateway_cost_usd_total{backend="m1",model="m1",tenant="only-m1"} 0.0' in text
    assert 'llm_gateway_cost_usd_total{backend="openai",model="gpt-4o-mini",tenant="both"} 0.0' in text
    assert 'llm_gateway_tokens_total{backend="m2",kind="prompt",model="m2",tenant="both"} 0.0' in text
    assert 'llm_gateway_requests_total{route="/v1/chat/completions",status="200",tenant="both"} 0.0' in text
    assert 'llm_gateway_time_to_first_token_seconds_count{backend="m2",tenant="both"} 0.0' in text
    only_m1 = [line for line in text.splitlines() if 'tenant="only-m1"' in line]
    assert only_m1 and not any('backend="openai"' in line or "m2" in line for line in only_m1)  # not its models
    assert metric_value(text, "llm_gateway_tenant_monthly_budget_usd", tenant="only-m1") == 5
    assert 'llm_gateway_tenant_monthly_budget_usd{tenant="both"}' not in text  # no budget, no series
    assert 'route="/metrics"' not in text and 'route="/healthz"' not in text


@pytest.mark.e2e
def test_with_a_metrics_port_only_that_port_serves_metrics_and_nothing_else(process_group, tmp_path, stub_url):
    """On a cluster the gateway serves /metrics (every tenant's usage and budget) on its own port, which the
    platform's NetworkPolicy opens to Prometheus alone; the API port tenants reach has no /metrics."""
    api_port, metrics_port = free_port(), free_port()
    config = controlled_gateway_config([tenant_route("t", "k")], stub_url)
    process_group(
        launchers.gateway(config, api_port, tmp_path, workers=2, extra_env={"METRICS_PORT": str(metrics_port)})
    )
    api, metrics = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{metrics_port}"
    assert chat(api, "k").status_code == 200
    assert httpx.get(api + "/metrics").status_code == 404
    assert httpx.get(api + "/metrics", headers={"Host": f"127.0.0.1:{metrics_port}"}).status_code == 404
    scraped = httpx.get(metrics + "/metrics")
    assert scraped.status_code == 200
    assert metric_value(scraped.text, "llm_gateway_requests_total", tenant="t", status="200") == 1
    assert (
        httpx.post(metrics + "/v1/chat/completions", json={}, headers={"Authorization": "Bearer k"}).status_code == 404
    )
    assert httpx.get(metrics + "/healthz").status_code == 404
    assert httpx.get(api + "/healthz").status_code == 200

"""Alertmanager on the real node: the image `tenantctl images build` makes from Debian's package, its
config rendered in the Pod by the config-sync sidecar from the TenantRoutes, Prometheus sending to it.

Alertmanager's API is open to the platform's namespace only, so it is read from probe Pods there
(tenantctl/cluster/in_cluster.py); what Prometheus scrapes of it is read through Prometheus.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from kubernetes import client

from tenant_spec import SPEC_FILENAME
from tenantctl.cluster.in_cluster import Probe
from tenantctl.cluster.platform import NAMESPACE
from tenantctl.local.alertmanager import amtool_check
from tests.helpers import prometheus_query, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

ALERTMANAGER_HOST, ALERTMANAGER_PORT = f"alertmanager.{NAMESPACE}.svc.cluster.local", 9093
ALERTMANAGER = f"http://{ALERTMANAGER_HOST}:{ALERTMANAGER_PORT}"
GATEWAY_HOST, GATEWAY_PORT = f"llm-gateway.{NAMESPACE}.svc.cluster.local", 8080
TENANT = "alerted-co"
TOKEN_SECRET = "alerts-webhook"
EMBEDDING_MODEL = "all-minilm-l6-v2"  # the default catalogue's, served by the Deployment model-<name>
EMBEDDING_SERVERS = f"model-{EMBEDDING_MODEL}"


def alertmanager_get(node_platform, path: str) -> object:
    """GET on Alertmanager's API from a probe Pod in the platform's namespace, once the NetworkPolicy
    enforcer has admitted the new Pod (a moment after it starts; refused until then)."""
    probe = Probe().connect("admitted", ALERTMANAGER_HOST, ALERTMANAGER_PORT, retry_seconds=60)
    result = node_platform.pods().run(NAMESPACE, probe.request("get", "GET", ALERTMANAGER + path, timeout=30))["get"]
    assert result.get("status") == 200, result
    return json.loads(result["text"])


def set_replicas(node_platform, deployment: str, replicas: int) -> None:
    client.AppsV1Api(node_platform.api()).patch_namespaced_deployment_scale(
        deployment, NAMESPACE, {"spec": {"replicas": replicas}}
    )


def test_prometheus_sends_its_alerts_to_alertmanager_which_routes_them(node_platform):
    prometheus = node_platform.prometheus_url()
    wait_for(
        lambda: prometheus_query(prometheus, "alertmanager_config_last_reload_successful == 1"),
        timeout=300,
        what="Alertmanager up, with a config, scraped by Prometheus",
    )
    # A backend down: the embedding model's servers (the gateway's `backend` of a self-hosted model is its name).
    set_replicas(node_platform, EMBEDDING_SERVERS, 0)
    try:
        wait_for(
            lambda: prometheus_query(
                prometheus,
                f'ALERTS{{alertname="LLMGatewayBackendDown",backend="{EMBEDDING_MODEL}",alertstate="firing"}}',
            ),
            timeout=300,
            what="LLMGatewayBackendDown firing in Prometheus",
        )

        def routed_group():
            groups = alertmanager_get(node_platform, "/api/v2/alerts/groups")
            return [
                group
                for group in groups
                for alert in group["alerts"]
                if alert["labels"].get("alertname") == "LLMGatewayBackendDown"
            ]

        group = wait_for(routed_group, timeout=300, what="the alert in Alertmanager")[0]
        assert group["receiver"]["name"] == "platform"
        assert group["alerts"][0]["labels"]["backend"] == EMBEDDING_MODEL
    finally:
        set_replicas(node_platform, EMBEDDING_SERVERS, 1)
        node_platform.wait_all_ready(NAMESPACE)
        wait_for(
            lambda: prometheus_query(
                prometheus, f'max(llm_gateway_pool_member_up{{backend="{EMBEDDING_MODEL}"}}) == 1'
            ),
            timeout=300,
            what="the gateway using the embedding server again",
        )


def test_a_tenant_onboarded_later_gets_its_route_without_a_platform_apply(node_platform):
    spec = json.loads((node_platform.tenants_dir / "closed-ai" / SPEC_FILENAME).read_text())
    spec.update(
        {
            "name": TENANT,
            "local_port": None,
            "alerts": {"webhook_urls": ["https://hooks.alerted.example/am"], "webhook_token_secret": TOKEN_SECRET},
        }
    )
    node_platform.onboard(TENANT, spec)
    try:
        node_platform.apply_tenant(TENANT)
        node_platform.core.create_namespaced_secret(
            TENANT,
            client.V1Secret(metadata=client.V1ObjectMeta(name=TOKEN_SECRET), string_data={"token": "alerted-token"}),
        )

        def loaded_config() -> str | None:
            original = alertmanager_get(node_platform, "/api/v2/status")["config"]["original"]
            return original if f'tenant="{TENANT}"' in original and f"tokens/{TENANT}" in original else None

        applied = time.monotonic()
        config = wait_for(loaded_config, timeout=300, what=f"Alertmanager routing {TENANT} (config sync + reload)")
        print(
            f"{TENANT}: routed by Alertmanager {time.monotonic() - applied:.1f} s after its apply (probe Pods included)"
        )
        assert "alerted-token" not in config  # the token is a file Alertmanager reads, never in its config
        assert "SUCCESS" in amtool_check(yaml.safe_load(config))

        # A tenant's Pods cannot reach Alertmanager (nor silence anyone's alerts); the platform's can. The probe
        # carries the tenant proxy's labels (the tenant's most trusted Pod) and first reaches the gateway, which
        # that proxy may: its own address is admitted by then.
        proxy_labels = {"app.kubernetes.io/name": "tenant-proxy", "app.kubernetes.io/instance": TENANT}
        blocked = node_platform.pods().run(
            TENANT,
            Probe()
            .connect("gateway", GATEWAY_HOST, GATEWAY_PORT, retry_seconds=60)
            .connect("alertmanager", ALERTMANAGER_HOST, ALERTMANAGER_PORT),
            labels=proxy_labels,
        )
        assert blocked["gateway"]["connected"] is True, blocked
        assert blocked["alertmanager"]["connected"] is False, blocked
    finally:
        node_platform.tenant_terraform(TENANT).destroy()

"""Alertmanager in the platform root, on the test control plane: the objects Terraform writes, and the
config sync (alert_config_sync/sync.py) run as the Pod's ServiceAccount (impersonated), so its
rights are the ones tested: TenantRoutes here, one token Secret per tenant that grants it, nothing else.

Pods do not run on the control plane (no node): the same Deployment runs on the real node in
tests/cluster/test_alerts_on_node.py."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
import yaml
from kubernetes import client

from alert_config_sync.routing import PlatformAlerts
from alert_config_sync.sync import AlertConfigSync, load_platform
from tenant_spec import SPEC_FILENAME
from tenantctl.local.alertmanager import amtool_check

NAMESPACE = "monitoring"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:alertmanager"
TOKEN_SECRET = "alerts-webhook"


@pytest.fixture(scope="module")
def admin(cluster_platform):
    api = cluster_platform.control_plane.api_client()
    return {
        "core": client.CoreV1Api(api),
        "apps": client.AppsV1Api(api),
        "rbac": client.RbacAuthorizationV1Api(api),
        "net": client.NetworkingV1Api(api),
    }


@pytest.fixture(scope="module")
def alerted_tenant(cluster_platform, admin):
    """A third tenant onboarded after the platform, whose spec routes its alerts to a webhook with a token;
    the Secret holding the token, as its admins create it. Destroyed afterwards."""
    name = "alerted-co"
    directory = cluster_platform.tenants_dir / name
    shutil.copytree(cluster_platform.repo / "tenant-template", directory)
    spec = json.loads((cluster_platform.tenants_dir / "closed-ai" / SPEC_FILENAME).read_text())
    spec.update(
        {
            "name": name,
            "local_port": None,
            "alerts": {
                "webhook_urls": ["https://hooks.alerted.example/am"],
                "webhook_token_secret": TOKEN_SECRET,
                "severity_min": "critical",
            },
        }
    )
    (directory / SPEC_FILENAME).write_text(json.dumps(spec))
    terraform = cluster_platform.terraform(directory)
    terraform.init()
    terraform.apply()
    try:
        admin["core"].create_namespaced_secret(
            name,
            client.V1Secret(metadata=client.V1ObjectMeta(name=TOKEN_SECRET), string_data={"token": "alerted-token"}),
        )
        yield name
    finally:
        terraform.destroy()


def sync_as_alertmanager(cluster_platform, admin, tmp_path) -> AlertConfigSync:
    platform_json = admin["core"].read_namespaced_config_map("alertmanager-routing", NAMESPACE).data["platform.json"]
    (tmp_path / "platform.json").write_text(platform_json)
    api = cluster_platform.control_plane.api_client(impersonate=SERVICE_ACCOUNT)
    return AlertConfigSync(
        NAMESPACE, load_platform(tmp_path / "platform.json"), tmp_path / "alertmanager.yml", tmp_path / "tokens", api
    )


def test_alertmanager_runs_beside_its_config_sync_and_prometheus_sends_to_it(admin):
    deployment = admin["apps"].read_namespaced_deployment("alertmanager", NAMESPACE)
    pod = deployment.spec.template.spec
    assert pod.service_account_name == "alertmanager"
    assert [c.name for c in pod.containers] == ["alertmanager", "config-sync"]
    assert [c.name for c in pod.init_containers] == ["render-config"]  # Alertmanager starts with a config
    alertmanager, sync = pod.containers
    assert "--cluster.listen-address=" in alertmanager.args
    assert sync.command[:3] == ["python", "-m", "alert_config_sync"]
    assert all(c.security_context.read_only_root_filesystem for c in [*pod.containers, *pod.init_containers])
    assert pod.security_context.run_as_user == 65534

    prometheus = yaml.safe_load(
        admin["core"].read_namespaced_config_map("prometheus-config", NAMESPACE).data["prometheus.yml"]
    )
    assert prometheus["alerting"] == {
        "alertmanagers": [{"static_configs": [{"targets": ["alertmanager.monitoring.svc:9093"]}]}]
    }

    # Only Pods of the platform's namespace reach its API (silences!), no tenant namespace.
    policy = admin["net"].read_namespaced_network_policy("alertmanager-ingress", NAMESPACE)
    assert [peer.to_dict() for peer in policy.spec.ingress[0]._from] == [
        {
            "ip_block": None,
            "namespace_selector": None,
            "pod_selector": {"match_expressions": None, "match_labels": None},
        }
    ]

    role = admin["rbac"].read_namespaced_role("alertmanager", NAMESPACE)
    assert [(rule.api_groups, rule.resources, rule.verbs) for rule in role.rules] == [
        (["llm-tenants.io"], ["tenantroutes"], ["get", "list", "watch"]),
        (["llm-tenants.io"], ["modelcatalogues"], ["get", "list", "watch"]),
    ]  # no Secret of this namespace


def test_the_platform_receivers_are_the_routing_configmap(admin):
    platform = PlatformAlerts.model_validate_json(
        admin["core"].read_namespaced_config_map("alertmanager-routing", NAMESPACE).data["platform.json"]
    )
    assert platform.receive_tenant_alerts is True and platform.webhook_token_file is None  # the defaults


def test_a_tenant_onboarded_later_is_routed_without_a_platform_apply(cluster_platform, admin, alerted_tenant, tmp_path):
    route = client.CustomObjectsApi(cluster_platform.control_plane.api_client()).get_namespaced_custom_object(
        "llm-tenants.io", "v1alpha1", NAMESPACE, "tenantroutes", alerted_tenant
    )
    assert route["spec"]["alerts"]["webhook_token_secret"] == TOKEN_SECRET

    syncer = sync_as_alertmanager(cluster_platform, admin, tmp_path)
    assert syncer.sync() is True and syncer.sync() is False  # written once, then unchanged
    config = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
    assert "SUCCESS" in amtool_check(config)
    routes = {route["receiver"]: route.get("matchers") for route in config["route"]["routes"]}
    assert routes["tenant-alerted-co"] == ['tenant="alerted-co"', 'severity=~"critical"']
    receiver = next(r for r in config["receivers"] if r["name"] == "tenant-alerted-co")
    token_file = tmp_path / "tokens" / alerted_tenant
    assert receiver["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"] == str(token_file)
    assert (
        token_file.read_text() == "alerted-token" and "alerted-token" not in (tmp_path / "alertmanager.yml").read_text()
    )
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    # The example tenants name no receivers: their alerts reach the platform's, which hear everything.
    assert "tenant-acme-corp" not in routes and routes["platform"] is None


def test_the_sync_reads_only_the_token_secret_a_tenant_granted(cluster_platform, admin, alerted_tenant, tmp_path):
    """A tenant naming another tenant's Secret gets nothing from it: the grant lives in each tenant's own
    namespace, for the Secret of that namespace."""
    as_sync = client.CoreV1Api(cluster_platform.control_plane.api_client(impersonate=SERVICE_ACCOUNT))
    token = as_sync.read_namespaced_secret(TOKEN_SECRET, alerted_tenant).data["token"]
    assert base64.b64decode(token) == b"alerted-token"
    for namespace, name in (
        (alerted_tenant, "tenant-proxy-gateway-key"),
        ("acme-corp", TOKEN_SECRET),
        ("acme-corp", "tenant-proxy-gateway-key"),
        (NAMESPACE, "llm-gateway-ledger"),
    ):
        with pytest.raises(client.ApiException) as refused:
            as_sync.read_namespaced_secret(name, namespace)
        assert refused.value.status == 403, (namespace, name)


def test_a_route_the_sync_cannot_honour_costs_only_its_own_receivers(cluster_platform, admin, tmp_path):
    """Routes written past Terraform's validation (by hand, as the cluster admin): one names a webhook
    with credentials, one e-mail without an SMTP relay, one is named like no tenant. Each is logged; the
    others' alerts are still routed, and the first two tenants' alerts still reach the platform."""
    custom = client.CustomObjectsApi(cluster_platform.control_plane.api_client())
    template = custom.get_namespaced_custom_object("llm-tenants.io", "v1alpha1", NAMESPACE, "tenantroutes", "acme-corp")
    hostile = {
        "hand-cred": {"webhook_urls": ["https://u:p@hooks.example.com/"]},
        "hand-mail": {"email": ["oncall@example.com"]},
        "hand.dotted": {"webhook_urls": ["https://hooks.example.com/"]},
    }
    for name, alerts in hostile.items():
        custom.create_namespaced_custom_object(
            "llm-tenants.io",
            "v1alpha1",
            NAMESPACE,
            "tenantroutes",
            {
                "apiVersion": "llm-tenants.io/v1alpha1",
                "kind": "TenantRoute",
                "metadata": {"name": name},
                "spec": {**template["spec"], "alerts": alerts},
            },
        )
    try:
        syncer = sync_as_alertmanager(cluster_platform, admin, tmp_path)
        syncer.sync()
        config = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
        assert "SUCCESS" in amtool_check(config)
        assert not [r for r in config["receivers"] if r["name"].startswith("tenant-hand")]  # none of the three
        inhibited = " ".join(rule["target_matchers"][1] for rule in config["inhibit_rules"])
        assert "hand-cred" in inhibited and "hand-mail" in inhibited and "hand.dotted" not in inhibited
    finally:
        for name in hostile:
            custom.delete_namespaced_custom_object("llm-tenants.io", "v1alpha1", NAMESPACE, "tenantroutes", name)

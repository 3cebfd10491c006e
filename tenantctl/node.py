"""A real Kubernetes node on this machine, beside the local control plane (tenantctl/cluster.py).

`LocalCluster` = `LocalControlPlane` + `LocalNode`. The node runs, as children of this process:
containerd (Debian's 1.6, CRI plugin, runc, with its own config, root, state and socket under the
state directory), kubelet (cgroupfs driver, client-certificate authentication, no anonymous
access), kube-proxy (iptables mode), kube-scheduler and kube-router's NetworkPolicy controller
(iptables + ipset: it enforces the platform's NetworkPolicies). Pods get addresses from
POD_CIDR on the `cni0` bridge (CNI bridge + host-local + portmap + firewall, from Debian's
containernetworking-plugins); CoreDNS runs as a Deployment in kube-system behind the `kube-dns`
Service at CLUSTER_DNS_IP (tenantctl/node_addons.py), so NetworkPolicies that allow DNS to
`k8s-app=kube-dns` Pods work as on any cluster. The API server also listens on the node IP, so Pods reach it through the
`kubernetes` Service with in-cluster config.

Pods cannot reach beyond this machine: no masquerading, and an iptables rule (mangle FORWARD,
chain LLMT-EGRESS, ahead of every filter rule) drops anything from the Pod CIDR that is not
addressed to a Pod or Service (Pod traffic to the host itself is not forwarded and stays local).
The Service CIDR is routed onto the Pods' bridge, so a Service address kube-proxy has not (yet)
rewritten stays on this machine too, whether the host or a Pod sent it.

Usage (the API the tests and tools use):

    from tenantctl.node import LocalCluster
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
bridge are machine-wide): `start()` takes a lock (NODE_LOCK), waiting up to `lock_timeout`
seconds. `stop()` leaves nothing behind: no process, mount, network namespace, iptables rule or
chain, ipset, interface or cgroup, and the kernel settings kubelet changed are set back
(tenantctl/host_state.py). If the process was killed outright, the next `start()` or
`tenantctl cluster down` cleans up from the snapshot the node saved (NODE_RECORD).

It needs root, cgroup v1 or v2 with the cgroupfs driver, the binaries of `scripts/build-toolchain`
and the Debian packages `scripts/setup` installs.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import httpx
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tenantctl import host_state, node_images, toolchain
from tenantctl.cluster import SERVICE_CIDR, LocalControlPlane, Ports
from tenantctl.node_addons import CLUSTER_DNS_IP, CLUSTER_DOMAIN, KUBE_ROUTER_USER, cluster_objects, create
from tenantctl.processes import HOST_UMASK, ManagedProcess, ProcessFailed, free_port, wait_ready

POD_CIDR = "10.244.0.0/24"
NODE_LOCK = Path("/run/lock/llm-tenants-node.lock")
NODE_RECORD = Path("/run/llm-tenants-node.json")  # which state dir the running node uses, for crash recovery
# A short link to <state>/containerd: unix socket paths are limited to ~104 bytes, state directories
# (pytest's, for one) can be longer. One node per machine, so one fixed path.
SOCKET_LINK = Path("/run/llm-tenants-node")
# The kubelet makes its own sockets under its root directory (<state>/node/kubelet), first under a temporary
# ten-digit name; the longest is <root>/device-plugins/kubelet.sock. Linux allows 107 bytes.
LONGEST_KUBELET_SOCKET = ("device-plugins", "kubelet.sock")
UNIX_SOCKET_PATH_MAX = 107
CNI_BIN_DIR = Path("/usr/lib/cni")
RUNC = Path("/usr/sbin/runc")
EGRESS_CHAIN = "LLMT-EGRESS"

Log = Callable[[str], None]


class NodeError(RuntimeError):
    """The node cannot start here; the message says why and what to do."""


def detect_node_ip() -> str:
    """This machine's own address: the source address of its default route (LLM_TENANTS_NODE_IP overrides)."""
    if os.environ.get("LLM_TENANTS_NODE_IP"):
        return os.environ["LLM_TENANTS_NODE_IP"]
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "default"], capture_output=True,
                                       text=True).stdout or "[]")
    for route in routes:
        addresses = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", route["dev"]],
                                              capture_output=True, text=True).stdout or "[]")
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


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


class LocalNode:
    """containerd + kubelet + kube-proxy + kube-scheduler + kube-router + CoreDNS for `plane`."""

    def __init__(self, state_dir: Path, plane: LocalControlPlane, node_ip: str, log: Log | None = None,
                 lock_timeout: float = 0):
        self.state_dir = Path(state_dir).resolve()
        _check_socket_room(self.state_dir / "kubelet")
        self.plane = plane
        self.node_ip = node_ip
        self.log = log or (lambda message: None)
        self.lock_timeout = lock_timeout
        self.node_name = node_name()
        self.kubelet_on_loopback = kubelet_on_loopback(self.node_name)
        self.kubelet_port = free_port()
        self.processes: list[ManagedProcess] = []
        self.snapshot: host_state.HostSnapshot | None = None
        self._lock_file = None
        self.start_seconds: float | None = None
        self.timings: dict[str, float] = {}  # seconds since start() when each phase was done (bench/node.py)

    # -- paths -------------------------------------------------------------------------------

    @property
    def containerd_socket(self) -> Path:
        """The socket in <state>/containerd, through SOCKET_LINK (a short path)."""
        return SOCKET_LINK / "containerd.sock"

    @property
    def kubelet_address(self) -> str:
        return "127.0.0.1" if self.kubelet_on_loopback else self.node_ip

    def _path(self, *parts: str) -> Path:
        return self.state_dir.joinpath(*parts)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, deadline: float) -> None:
        """Start everything; the control plane must already run. Cleans up on any failure."""
        started = time.monotonic()
        self.timings = {}
        self.acquire_lock()
        try:
            recover_crashed_node(self.log)
            objects = _Background(self._create_cluster_objects)  # meanwhile: the API calls take a few seconds
            for phase, step in (("prepared", self._prepare), ("egress_guard", self._install_egress_guard),
                                ("service_route", self._keep_service_addresses_local),
                                ("containerd_and_images", lambda: self._start_containerd(deadline)),
                                ("node_ready", lambda: self._start_kubelet(deadline)),
                                ("cluster_objects", objects.result),
                                ("proxy_netpol_scheduler", lambda: self._start_network_and_scheduler(deadline)),
                                ("coredns_ready", lambda: self._wait_for_coredns(deadline))):
                step()
                self.timings[phase] = round(time.monotonic() - started, 2)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        self.log(f"node {self.node_name} ready in {self.start_seconds:.1f}s (node IP {self.node_ip})")

    def stop(self) -> None:
        """Stop every process and undo every host change; idempotent."""
        self._stop_kubernetes_processes()
        if self.containerd_socket.exists() and any(p.name == "containerd" and p.is_running() for p in self.processes):
            self._remove_all_pods()
        while self.processes:
            self.processes.pop().stop(timeout=10)
        if self.snapshot is not None:
            _restore_host(self.snapshot, self.state_dir, self.log)
            self.snapshot = None
            NODE_RECORD.unlink(missing_ok=True)
            self._path("host-snapshot.json").unlink(missing_ok=True)
        self._release_lock()

    def _stop_kubernetes_processes(self) -> None:
        """Everything but containerd, in reverse start order (kube-router removes its chains on SIGTERM)."""
        for process in reversed([p for p in self.processes if p.name != "containerd"]):
            process.stop(timeout=10)
        self.processes = [p for p in self.processes if p.name == "containerd"]

    def _remove_all_pods(self) -> None:
        """Stop and remove every Pod sandbox through CRI, so CNI releases its network (veth, netns, IP)."""
        crictl = [str(toolchain.CRICTL.path()), "--runtime-endpoint", f"unix://{self.containerd_socket}",
                  "--timeout", "30s", "rmp", "--all", "--force"]
        try:
            result = subprocess.run(crictl, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as error:
            self.log(f"crictl rmp: {error}")  # host_state.restore still kills and removes what is left
            return
        if result.returncode != 0:
            self.log(f"crictl rmp: {result.stderr.strip()[:500]}")

    # -- one node per machine ----------------------------------------------------------------

    def acquire_lock(self) -> None:
        """Wait (up to `lock_timeout`) until no other node runs on this machine; a no-op when already held."""
        if self._lock_file is not None:
            return
        NODE_LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(NODE_LOCK, "a+")
        deadline = time.monotonic() + self.lock_timeout
        announced = False
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_record().get("state_dir", "unknown")
                if time.monotonic() >= deadline:
                    self._lock_file.close()
                    self._lock_file = None
                    raise NodeError(f"another local node is running on this machine (state {holder}); "
                                    "stop it first (`tenantctl cluster down`)")
                if not announced:
                    self.log(f"waiting up to {self.lock_timeout:.0f}s for the node of {holder} to stop")
                    announced = True
                time.sleep(0.2)

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # -- preparation -------------------------------------------------------------------------

    def _prepare(self) -> None:
        self._check_host()
        for sub in ("containerd/state", "containerd/runc", "kubelet", "cni", "logs", "pod-logs", "config"):
            path = self._path(*sub.split("/"))
            if path.exists():
                subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)
        self.snapshot = host_state.HostSnapshot.take()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.snapshot.save(self._path("host-snapshot.json"))
        NODE_RECORD.write_text(json.dumps({"pid": os.getpid(), "state_dir": str(self.state_dir)}))
        self._path("containerd").mkdir(parents=True, exist_ok=True)
        SOCKET_LINK.unlink(missing_ok=True)
        SOCKET_LINK.symlink_to(self._path("containerd"))
        self._write_certificates()
        self._write_containerd_config()
        self._write_cni_config()
        # Pod traffic on the bridge must pass iptables (kube-proxy's Service rules, kube-router's policies)
        for key in ("net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward"):
            host_state.sysctl_path(key).write_text("1\n")

    def _check_host(self) -> None:
        if os.geteuid() != 0:
            raise NodeError("the local node needs root (kubelet, containerd, iptables)")
        missing = [str(p) for p in (Path("/usr/bin/containerd"), Path("/usr/bin/ctr"), RUNC, CNI_BIN_DIR / "bridge",
                                    CNI_BIN_DIR / "firewall", Path("/usr/sbin/iptables"), Path("/usr/sbin/ipset"),
                                    Path("/usr/sbin/conntrack")) if not p.exists()]
        if missing:
            raise NodeError(f"missing {', '.join(missing)}: run scripts/setup (Debian packages)")
        problems = toolchain.missing_binaries(toolchain.NODE_COMPONENTS)
        if problems:
            raise NodeError("\n".join(problems))

    def _write_certificates(self) -> None:
        pki, pki_dir = self.plane.pki, self._path("pki")
        pki_dir.mkdir(parents=True, exist_ok=True)
        server = self.plane.api_url
        pki.client_kubeconfig(self._path("kubelet.kubeconfig"), server, f"system:node:{self.node_name}",
                              "system:nodes")
        pki.client_kubeconfig(self._path("kube-proxy.kubeconfig"), server, "system:kube-proxy")
        pki.client_kubeconfig(self._path("kube-scheduler.kubeconfig"), server, "system:kube-scheduler")
        pki.client_kubeconfig(self._path("kube-router.kubeconfig"), server, KUBE_ROUTER_USER)
        names = (self.node_name, "localhost")
        pki.server_certificate(pki_dir / "kubelet", "kubelet", names, ("127.0.0.1", self.node_ip))

    def _write_containerd_config(self) -> None:
        root, state = self._path("containerd", "root"), self._path("containerd", "state")
        _write(self._path("containerd", "config.toml"), f"""\
# Generated by tenantctl.node: this node's own containerd, apart from any system or Docker containerd.
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.containerd_socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{self._path('containerd', 'opt')}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{node_images.PAUSE.reference}"
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
        Root = "{self._path('containerd', 'runc')}"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{self._path('cni', 'net.d')}"
    max_conf_num = 1
""")

    def _write_cni_config(self) -> None:
        network = {
            "cniVersion": "1.0.0", "name": host_state.CNI_NETWORK,
            "plugins": [
                {"type": "bridge", "bridge": host_state.BRIDGE, "isGateway": True, "ipMasq": False,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self._path("cni", "ipam"))}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
                # Docker's daemon may set the FORWARD policy to DROP: this lets Pod traffic pass
                {"type": "firewall", "backend": "iptables"},
            ]}
        _write(self._path("cni", "net.d", "10-llm-tenants.conflist"), json.dumps(network, indent=2))

    # -- the egress guard --------------------------------------------------------------------

    def _install_egress_guard(self) -> None:
        """Drop anything a Pod sends to an address that is neither a Pod nor a Service.

        In mangle FORWARD, which the kernel runs before every filter FORWARD rule (CNI's, kube-router's,
        Docker's), so no ACCEPT elsewhere can let a Pod's packet out. Traffic from a Pod to the host itself is
        delivered locally (INPUT) and never forwarded. IPv6: Pods have no IPv6 address; nothing from the
        bridge is forwarded either.
        """
        rules = [
            ["-t", "mangle", "-N", EGRESS_CHAIN],
            ["-t", "mangle", "-A", EGRESS_CHAIN, "-d", POD_CIDR, "-j", "RETURN"],
            ["-t", "mangle", "-A", EGRESS_CHAIN, "-d", SERVICE_CIDR, "-j", "RETURN"],
            ["-t", "mangle", "-A", EGRESS_CHAIN, "-m", "comment", "--comment",
             "llm-tenants: Pods must not reach beyond this machine", "-j", "DROP"],
            ["-t", "mangle", "-I", "FORWARD", "1", "-s", POD_CIDR, "-j", EGRESS_CHAIN],
        ]
        for rule in rules:
            subprocess.run(["iptables", *rule], check=True, capture_output=True)
        subprocess.run(["ip6tables", "-t", "mangle", "-N", EGRESS_CHAIN], check=True, capture_output=True)
        subprocess.run(["ip6tables", "-t", "mangle", "-A", EGRESS_CHAIN, "-j", "DROP"], check=True, capture_output=True)
        subprocess.run(["ip6tables", "-t", "mangle", "-I", "FORWARD", "1", "-i", host_state.BRIDGE, "-j",
                        EGRESS_CHAIN], check=True, capture_output=True)

    def _keep_service_addresses_local(self) -> None:
        """Route the Service CIDR onto the Pods' bridge (made here; the CNI plugin adopts it).

        kube-proxy rewrites a Service address into a Pod's once it has synced that Service. Until then, and
        for an address no Service has, a packet to it, from the host or forwarded from a Pod, would follow
        the default route off this machine (a test's request to a brand-new Service once did, and got an
        empty answer no Pod had sent). On the bridge nobody answers for it, and the packet stays here.
        Deleting the bridge at stop removes the route.
        """
        if host_state.BRIDGE not in host_state.link_names():
            subprocess.run(["ip", "link", "add", host_state.BRIDGE, "type", "bridge"], check=True, capture_output=True)
        subprocess.run(["ip", "link", "set", host_state.BRIDGE, "up"], check=True, capture_output=True)
        subprocess.run(["ip", "route", "replace", SERVICE_CIDR, "dev", host_state.BRIDGE], check=True,
                       capture_output=True)

    # -- processes ---------------------------------------------------------------------------

    def _launch(self, name: str, argv: list[str], health_url: str = "",
                ready: Callable[[], bool] | None = None) -> ManagedProcess:
        process = ManagedProcess(name=name, argv=argv, health_url=health_url, ready=ready,
                                 log_path=self._path("logs", f"{name}.log"), cwd=self.state_dir, umask=HOST_UMASK)
        self.log(f"starting {name}")
        self.processes.append(process)
        process.start()
        return process

    def _start_containerd(self, deadline: float) -> None:
        process = self._launch("containerd", ["/usr/bin/containerd", "--config",
                                              str(self._path("containerd", "config.toml")), "--log-level", "warn"])
        wait_ready(process, self._containerd_ready, deadline)
        for image in node_images.node_images():
            self.import_image(node_images.ensure_image(image, self.log))

    def _ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["/usr/bin/ctr", "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args],
                              capture_output=True, text=True, timeout=timeout)

    def _containerd_ready(self) -> bool:
        return self.containerd_socket.exists() and self._ctr("version", timeout=10).returncode == 0

    def import_image(self, archive: Path | str) -> list[str]:
        """Import a docker-archive or OCI tar into containerd's k8s.io namespace; returns the references added."""
        before = set(self.images())
        result = self._ctr("images", "import", str(archive))
        if result.returncode != 0:
            raise NodeError(f"importing {archive} failed: {result.stderr.strip()}")
        return sorted(set(self.images()) - before) or [line.split()[1] for line in result.stdout.splitlines()
                                                       if line.startswith("unpacking ")]

    def images(self) -> list[str]:
        """Name:tag references of the images in the node's containerd (digest references left out)."""
        result = self._ctr("images", "list", "--quiet", timeout=30)
        if result.returncode != 0:
            raise NodeError(f"listing images failed: {result.stderr.strip()}")
        return sorted(ref for ref in result.stdout.split() if not ref.startswith("sha256:") and "@" not in ref)

    def _start_kubelet(self, deadline: float) -> None:
        pki_dir = self._path("pki")
        kubelet_config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": self.kubelet_address, "port": self.kubelet_port, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": (healthz_port := free_port()),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(self.plane.ca_cert)}},
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(pki_dir / "kubelet.crt"), "tlsPrivateKeyFile": str(pki_dir / "kubelet.key"),
            "cgroupDriver": "cgroupfs", "failCgroupV1": False, "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "clusterDNS": [CLUSTER_DNS_IP], "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": str(_write(self._path("config", "resolv.conf"), "# Pods resolve cluster names only\n")),
            "podLogsDir": str(self._path("pod-logs")),
            "volumePluginDir": str(self._path("kubelet", "volume-plugins")),
            "oomScoreAdj": 0,  # root here lacks CAP_SYS_RESOURCE
            # never garbage-collect imported images or evict Pods for this machine's disk usage: nothing can be pulled
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "shutdownGracePeriod": "0s", "serializeImagePulls": False,
            "registerNode": True, "rotateCertificates": False, "serverTLSBootstrap": False,
        }
        config_file = _write(self._path("config", "kubelet.json"), json.dumps(kubelet_config, indent=2))
        process = self._launch("kubelet", [
            str(toolchain.binary(toolchain.KUBELET)), f"--config={config_file}",
            f"--kubeconfig={self._path('kubelet.kubeconfig')}", f"--root-dir={self._path('kubelet')}",
            f"--node-ip={self.node_ip}", f"--hostname-override={self.node_name}", "--v=1"])
        wait_ready(process, lambda: httpx.get(f"http://127.0.0.1:{healthz_port}/healthz", timeout=2).status_code == 200,
                   deadline)
        wait_ready(process, self._node_ready, deadline)

    def _core(self) -> client.CoreV1Api:
        return client.CoreV1Api(config.new_client_from_config(config_file=str(self.plane.kubeconfig)))

    def _node_ready(self) -> bool:
        try:
            node = self._core().read_node(self.node_name)
        except ApiException:
            return False
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

    def _start_network_and_scheduler(self, deadline: float) -> None:
        proxy_health, router_health, scheduler_port = free_port(), free_port(), free_port()
        proxy_config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self._path("kube-proxy.kubeconfig"))},
            "mode": "iptables", "hostnameOverride": self.node_name, "clusterCIDR": POD_CIDR,
            "healthzBindAddress": f"127.0.0.1:{proxy_health}", "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "nodePortAddresses": ["primary"], "oomScoreAdj": 0,
            # zeros and false: kube-proxy changes no kernel setting
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
                          "udpTimeout": "0s", "udpStreamTimeout": "0s"},
            "iptables": {"localhostNodePorts": False, "masqueradeAll": False, "minSyncPeriod": "0s"},
        }
        proxy_file = _write(self._path("config", "kube-proxy.json"), json.dumps(proxy_config, indent=2))
        proxy = self._launch("kube-proxy", [str(toolchain.binary(toolchain.KUBE_PROXY)), f"--config={proxy_file}",
                                            "--v=1"], health_url=f"http://127.0.0.1:{proxy_health}/healthz")
        router = self._launch("kube-router-netpol", [
            str(toolchain.binary(toolchain.KUBE_ROUTER_NETPOL)), f"--kubeconfig={self._path('kube-router.kubeconfig')}",
            f"--hostname-override={self.node_name}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--health-address=127.0.0.1:{router_health}", "--v=1"],
            health_url=f"http://127.0.0.1:{router_health}/healthz")
        scheduler_kubeconfig = self._path("kube-scheduler.kubeconfig")
        scheduler = self._launch("kube-scheduler", [
            str(toolchain.binary(toolchain.KUBE_SCHEDULER)), f"--kubeconfig={scheduler_kubeconfig}",
            f"--authentication-kubeconfig={scheduler_kubeconfig}", f"--authorization-kubeconfig={scheduler_kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={scheduler_port}", "--v=1"],
            ready=lambda: _https_ok(f"https://127.0.0.1:{scheduler_port}/healthz"))
        for process in (proxy, router):
            wait_ready(process, lambda p=process: httpx.get(p.health_url, timeout=2).status_code == 200, deadline)
        wait_ready(scheduler, scheduler.ready, deadline)

    # -- cluster objects ---------------------------------------------------------------------

    def _create_cluster_objects(self) -> None:
        """RBAC for kube-router; CoreDNS's account, configuration, Service and Deployment (scheduled once the
        node and the scheduler run)."""
        api = config.new_client_from_config(config_file=str(self.plane.kubeconfig))
        for document in cluster_objects():
            create(api, document)

    def _wait_for_coredns(self, deadline: float) -> None:
        api = config.new_client_from_config(config_file=str(self.plane.kubeconfig))
        apps = client.AppsV1Api(api)
        kubelet = next(p for p in self.processes if p.name == "kubelet")

        def coredns_ready() -> bool:
            status = apps.read_namespaced_deployment("coredns", "kube-system").status
            return bool(status.ready_replicas)

        try:
            wait_ready(kubelet, coredns_ready, deadline)
        except ProcessFailed as error:
            pods = client.CoreV1Api(api).list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns")
            raise ProcessFailed(f"CoreDNS did not become ready: {[p.status.to_dict() for p in pods.items]}\n{error}")


class _Background:
    """Run `function` in a thread; `result()` waits for it and re-raises its exception."""

    def __init__(self, function: Callable[[], None]):
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function,), daemon=True)
        self._thread.start()

    def _run(self, function: Callable[[], None]) -> None:
        try:
            function()
        except BaseException as error:  # handed to the caller of result()
            self._error = error

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _https_ok(url: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # its own self-signed serving cert
    return httpx.get(url, verify=context, timeout=2).status_code == 200


# -- crash recovery ------------------------------------------------------------------------------

def _read_record() -> dict:
    try:
        return json.loads(NODE_RECORD.read_text())
    except (OSError, ValueError):
        return {}


def recover_crashed_node(log: Log) -> bool:
    """Undo the host changes of a node whose process was killed outright (its record is left behind).

    Only called with the node lock held, so the recorded node is certainly not running.
    """
    record = _read_record()
    if not record:
        return False
    state_dir = Path(record["state_dir"])
    snapshot = host_state.HostSnapshot.load(state_dir / "host-snapshot.json")
    if snapshot is not None:
        log(f"cleaning up after a node that did not stop (state {state_dir})")
        _restore_host(snapshot, state_dir, log)
        (state_dir / "host-snapshot.json").unlink(missing_ok=True)
    NODE_RECORD.unlink(missing_ok=True)
    return True


def _restore_host(snapshot: host_state.HostSnapshot, state_dir: Path, log: Log) -> None:
    # containerd shims name the socket by its short path: they are found by that too
    host_state.restore(snapshot, state_dir, (POD_CIDR, host_state.BRIDGE), log,
                       process_markers=(str(state_dir), str(SOCKET_LINK) + "/"),
                       containerd_address=str(SOCKET_LINK / "containerd.sock"))
    if SOCKET_LINK.is_symlink():
        SOCKET_LINK.unlink()


def cleanup_crashed_node(log: Log, lock_timeout: float = 0) -> bool:
    """`tenantctl cluster down` after a crash: take the lock (no node runs), then recover."""
    NODE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(NODE_LOCK, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        try:
            return recover_crashed_node(log)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- control plane + node ------------------------------------------------------------------------

def _check_socket_room(kubelet_root: Path) -> None:
    """Refuse a state directory so deep that the kubelet could not bind its sockets ("invalid argument")."""
    longest = kubelet_root.joinpath(*LONGEST_KUBELET_SOCKET)
    if len(str(longest).encode()) > UNIX_SOCKET_PATH_MAX:
        raise NodeError(f"the state directory {kubelet_root.parent.parent} is too deep for the kubelet's unix "
                        f"sockets ({longest} is over {UNIX_SOCKET_PATH_MAX} bytes); choose a shorter --state-dir")


class LocalCluster:
    """The local control plane and one node, started and stopped together (see the module docstring)."""

    def __init__(self, state_dir: Path | str, log: Log | None = None, node_ip: str | None = None,
                 lock_timeout: float = 0, ports: Ports | None = None):
        self.state_dir = Path(state_dir).resolve()
        self.log = log or (lambda message: None)
        self.node_ip = node_ip or detect_node_ip()
        address_types = "Hostname,InternalIP" if kubelet_on_loopback(node_name()) else "InternalIP,Hostname"
        self.control_plane = LocalControlPlane(self.state_dir, ports=ports, log=self.log, node_ip=self.node_ip,
                                               kubelet_address_types=address_types)
        self.node = LocalNode(self.state_dir / "node", self.control_plane, self.node_ip, log=self.log,
                              lock_timeout=lock_timeout)
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
        return node_images.busybox_image().reference

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def import_image(self, archive: Path | str) -> list[str]:
        return self.node.import_image(archive)

    def images(self) -> list[str]:
        return self.node.images()

    def start(self, timeout: float = 300) -> "LocalCluster":
        self.node.acquire_lock()  # before anything starts: waiting for another node is not start-up time
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

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

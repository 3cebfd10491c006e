"""A real local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager.

Used by the tests (tests/conftest.py) and by `tenantctl cluster up` for trying `terraform apply`
and inspecting the result by hand. The binaries come from `scripts/build-toolchain`
(tenantctl/terraform/toolchain.py); their command lines are rendered in rendering.py.

Alone (`LocalControlPlane`, `tenantctl cluster up --control-plane-only`) there is no scheduler
and no kubelet: Deployments get ReplicaSets and Pods, but Pods stay Pending. What is real:
authentication (client certificates, service-account tokens), RBAC, admission (ResourceQuota,
ServiceAccount, NamespaceLifecycle, ...), and the controllers that fill quota status, create
default ServiceAccounts and finalize namespace deletion. `tenantctl cluster up` adds a real node
(kubelet on containerd, kube-proxy, kube-scheduler, CoreDNS, NetworkPolicies): node.py.

Every process runs in its own process group with PR_SET_PDEATHSIG (tenantctl.processes),
so none outlives the Python process that started it.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tenantctl.cluster.network import SERVICE_CIDR
from tenantctl.cluster.pki import Pki
from tenantctl.cluster.rendering import apiserver_args, controller_manager_args, etcd_args
from tenantctl.processes import ManagedProcess, free_port, wait_ready
from tenantctl.terraform.toolchain import ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, binary


@dataclass
class Ports:
    etcd_client: int = field(default_factory=free_port)
    etcd_peer: int = field(default_factory=free_port)
    apiserver: int = field(default_factory=free_port)


class LocalControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on loopback ports, state under `state_dir`.

    `start()` is fresh every time (new certificates, empty etcd); `stop()` is idempotent
    and always leaves no process behind.
    """

    def __init__(
        self,
        state_dir: Path | str,
        ports: Ports | None = None,
        log: Callable[[str], None] | None = None,
        node_ip: str | None = None,
        kubelet_address_types: str = "Hostname,InternalIP",
    ):
        self.state_dir = Path(state_dir).resolve()
        self.ports = ports or Ports()
        # With a node (node.py): the API server also listens on, and advertises, the node's IP, so
        # the `kubernetes` Service has a real endpoint Pods can reach; it talks to the kubelet with a client cert.
        self.node_ip = node_ip
        self.kubelet_address_types = kubelet_address_types
        self.log = log or (lambda message: None)
        self.processes: list[ManagedProcess] = []
        self.pki: Pki | None = None
        self.start_seconds: float | None = None

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (user `admin` in group system:masters)."""
        return self.state_dir / "admin.kubeconfig"

    @property
    def ca_cert(self) -> Path:
        return self.state_dir / "pki" / "ca.crt"

    @property
    def _kubelet_client_cert(self) -> Path:
        """Prefix of the client certificate the API server shows the kubelet (with a node)."""
        return self.state_dir / "pki" / "apiserver-kubelet-client"

    def start(self, timeout: float = 120) -> LocalControlPlane:
        """Start everything and wait until the API is ready and the controllers work."""
        binaries = {c.name: binary(c) for c in (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER)}
        started = time.monotonic()
        try:
            self._prepare()
            deadline = started + timeout
            self._launch(self._etcd(binaries["etcd"]))
            wait_ready(self.processes[-1], self._etcd_healthy, deadline)
            self._launch(self._apiserver(binaries["kube-apiserver"]))
            wait_ready(self.processes[-1], self._apiserver_ready, deadline)
            self._launch(self._controller_manager(binaries["kube-controller-manager"]))
            wait_ready(self.processes[-1], self._controllers_working, deadline)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        self.log(f"control plane ready in {self.start_seconds:.1f}s at {self.api_url}")
        return self

    def stop(self) -> None:
        """Stop in reverse start order; SIGKILL whatever ignores SIGTERM."""
        while self.processes:
            process = self.processes.pop()
            process.stop(timeout=10)

    def __enter__(self) -> LocalControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _prepare(self) -> None:
        if self.processes:
            raise RuntimeError("control plane already started")
        for sub in ("etcd", "pki", "logs"):
            path = self.state_dir / sub
            shutil.rmtree(path, ignore_errors=True)
        self.pki = Pki.generate(self.state_dir / "pki", SERVICE_CIDR, extra_ips=(self.node_ip,) if self.node_ip else ())
        if self.node_ip:
            self.pki.client_certificate(self._kubelet_client_cert, "kube-apiserver-kubelet-client", "system:masters")
        self.pki.client_kubeconfig(self.kubeconfig, self.api_url, "admin", "system:masters")
        self.pki.client_kubeconfig(
            self.state_dir / "controller-manager.kubeconfig", self.api_url, "system:kube-controller-manager"
        )

    def _launch(self, process: ManagedProcess) -> None:
        self.log(f"starting {process.name}")
        self.processes.append(process)
        process.start()

    def _process(self, name: str, argv: list[str]) -> ManagedProcess:
        return ManagedProcess(
            name=name, argv=argv, health_url="", log_path=self.state_dir / "logs" / f"{name}.log", cwd=self.state_dir
        )

    def _etcd(self, binary_path: Path) -> ManagedProcess:
        return self._process(
            "etcd", etcd_args(binary_path, self.state_dir / "etcd", self.ports.etcd_client, self.ports.etcd_peer)
        )

    def _apiserver(self, binary_path: Path) -> ManagedProcess:
        return self._process(
            "kube-apiserver",
            apiserver_args(
                binary_path,
                self.pki,
                etcd_port=self.ports.etcd_client,
                secure_port=self.ports.apiserver,
                node_ip=self.node_ip,
                kubelet_client_cert=self._kubelet_client_cert,
                kubelet_address_types=self.kubelet_address_types,
            ),
        )

    def _controller_manager(self, binary_path: Path) -> ManagedProcess:
        return self._process(
            "kube-controller-manager",
            controller_manager_args(
                binary_path,
                self.pki,
                self.state_dir / "controller-manager.kubeconfig",
                self.state_dir / "flex-volume-plugins",
            ),
        )

    # -- readiness ---------------------------------------------------------------------------

    def _etcd_healthy(self) -> bool:
        response = httpx.get(f"http://127.0.0.1:{self.ports.etcd_client}/health", timeout=2)
        return response.status_code == 200 and response.json().get("health") == "true"

    def http_client(self) -> httpx.Client:
        """An httpx client authenticated as the admin (for probes and quick checks)."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        config = json.loads(self.kubeconfig.read_text())
        user = config["users"][0]["user"]
        cert_dir = self.state_dir / "pki"
        cert, key = cert_dir / "admin-client.crt", cert_dir / "admin-client.key"
        if not cert.exists():
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            key.chmod(0o600)
        context.load_cert_chain(str(cert), str(key))
        return httpx.Client(base_url=self.api_url, verify=context, timeout=5)

    def _apiserver_ready(self) -> bool:
        with self.http_client() as http:
            return http.get("/readyz").status_code == 200

    def _controllers_working(self) -> bool:
        """The default ServiceAccount in `default` exists once the controllers run."""
        with self.http_client() as http:
            return http.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200

    def version(self) -> dict:
        with self.http_client() as http:
            return http.get("/version").raise_for_status().json()

"""A real local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager.

Used by the tests (tests/conftest.py) and by `tenantctl cluster up` for trying `terraform apply`
and inspecting the result by hand. The binaries come from `scripts/build-toolchain`
(tenantctl/toolchain.py).

Alone (`LocalControlPlane`, `tenantctl cluster up --control-plane-only`) there is no scheduler
and no kubelet: Deployments get ReplicaSets and Pods, but Pods stay Pending. What is real:
authentication (client certificates, service-account tokens), RBAC, admission (ResourceQuota,
ServiceAccount, NamespaceLifecycle, ...), and the controllers that fill quota status, create
default ServiceAccounts and finalize namespace deletion. `tenantctl cluster up` adds a real node
(kubelet on containerd, kube-proxy, kube-scheduler, CoreDNS, NetworkPolicies): tenantctl/node.py.

Every process runs in its own process group with PR_SET_PDEATHSIG (tenantctl.processes),
so none outlives the Python process that started it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from tenantctl import toolchain
from tenantctl.pki import Pki
from tenantctl.processes import ManagedProcess, ProcessFailed, free_port, wait_ready

SERVICE_CIDR = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_STATE_DIR = Path(".run/cluster")


# -- The control plane ---------------------------------------------------------------------------

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

    def __init__(self, state_dir: Path | str, ports: Ports | None = None, log: Callable[[str], None] | None = None,
                 node_ip: str | None = None, kubelet_address_types: str = "Hostname,InternalIP"):
        self.state_dir = Path(state_dir).resolve()
        self.ports = ports or Ports()
        # With a node (tenantctl/node.py): the API server also listens on, and advertises, the node's IP, so
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

    def start(self, timeout: float = 120) -> "LocalControlPlane":
        """Start everything and wait until the API is ready and the controllers work."""
        binaries = {c.name: toolchain.binary(c) for c in
                    (toolchain.ETCD, toolchain.KUBE_APISERVER, toolchain.KUBE_CONTROLLER_MANAGER)}
        started = time.monotonic()
        try:
            self._prepare()
            deadline = started + timeout
            self._launch(self._etcd(binaries["etcd"]))
            self._wait(self.processes[-1], self._etcd_healthy, deadline)
            self._launch(self._apiserver(binaries["kube-apiserver"]))
            self._wait(self.processes[-1], self._apiserver_ready, deadline)
            self._launch(self._controller_manager(binaries["kube-controller-manager"]))
            self._wait(self.processes[-1], self._controllers_working, deadline)
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

    def __enter__(self) -> "LocalControlPlane":
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
            self.pki.client_certificate(self.state_dir / "pki" / "apiserver-kubelet-client",
                                        "kube-apiserver-kubelet-client", "system:masters")
        self.pki.client_kubeconfig(self.kubeconfig, self.api_url, "admin", "system:masters")
        self.pki.client_kubeconfig(self.state_dir / "controller-manager.kubeconfig", self.api_url,
                                   "system:kube-controller-manager")

    def _launch(self, process: ManagedProcess) -> None:
        self.log(f"starting {process.name}")
        self.processes.append(process)
        process.start()

    def _process(self, name: str, argv: list[str]) -> ManagedProcess:
        return ManagedProcess(name=name, argv=argv, health_url="", log_path=self.state_dir / "logs" / f"{name}.log",
                              cwd=self.state_dir)

    def _etcd(self, binary: Path) -> ManagedProcess:
        client = f"http://127.0.0.1:{self.ports.etcd_client}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        return self._process("etcd", [
            str(binary), "--name=local", f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=local={peer}", "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",  # throw-away data: speed over durability
            "--log-level=warn"])

    def _apiserver(self, binary: Path) -> ManagedProcess:
        pki = self.pki
        return self._process("kube-apiserver", [
            str(binary), f"--etcd-servers=http://127.0.0.1:{self.ports.etcd_client}",
            *self._addresses(), f"--secure-port={self.ports.apiserver}",
            f"--cert-dir={self.state_dir / 'pki'}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",  # default admission plugins stay on (ResourceQuota, ...)
            "--allow-privileged=true",
            "--profiling=false", "--v=1"])

    def _addresses(self) -> list[str]:
        if not self.node_ip:
            return ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                    "--endpoint-reconciler-type=none"]  # 127.0.0.1 is not a valid Endpoints address
        client_cert = self.state_dir / "pki" / "apiserver-kubelet-client"
        return ["--bind-address=0.0.0.0", f"--advertise-address={self.node_ip}",
                f"--kubelet-client-certificate={client_cert}.crt", f"--kubelet-client-key={client_cert}.key",
                f"--kubelet-certificate-authority={self.pki.ca_cert}",
                # how it reaches the kubelet: by host name where that is loopback (tenantctl/node.py)
                f"--kubelet-preferred-address-types={self.kubelet_address_types}"]

    def _controller_manager(self, binary: Path) -> ManagedProcess:
        pki = self.pki
        kubeconfig = self.state_dir / "controller-manager.kubeconfig"
        return self._process("kube-controller-manager", [
            str(binary), f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            f"--root-ca-file={pki.ca_cert}", f"--service-account-private-key-file={pki.sa_key}",
            f"--cluster-signing-cert-file={pki.ca_cert}", f"--cluster-signing-key-file={pki.ca_key}",
            "--use-service-account-credentials=true", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*", "--leader-elect=false", "--secure-port=0", "--bind-address=127.0.0.1",
            "--profiling=false", "--v=1",
            # (its default, /usr/libexec/kubernetes/..., would be created on the host and left there)
            f"--flex-volume-plugin-dir={self.state_dir / 'flex-volume-plugins'}"])

    # -- readiness ---------------------------------------------------------------------------

    def _wait(self, process: ManagedProcess, probe: Callable[[], bool], deadline: float) -> None:
        wait_ready(process, probe, deadline)

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


# -- `tenantctl cluster up|down|status` ----------------------------------------------------------

def _state_file(state_dir: Path) -> Path:
    return state_dir / "cluster.json"


def _read_state(state_dir: Path) -> dict | None:
    try:
        return json.loads(_state_file(state_dir).read_text())
    except (OSError, ValueError):
        return None


def running_kubeconfig(state_dir: Path = DEFAULT_STATE_DIR) -> Path | None:
    """The admin kubeconfig of a control plane `tenantctl cluster up` is running, if any."""
    state = running_state(state_dir)
    return Path(state["kubeconfig"]) if state else None


def running_state(state_dir: Path = DEFAULT_STATE_DIR) -> dict | None:
    """What a running `tenantctl cluster up` wrote to cluster.json (kubeconfig, node, containerd_socket, ...)."""
    state = _read_state(state_dir.resolve())
    return state if state and _pid_alive(state["pid"]) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _serve(state_dir: Path, with_node: bool, lock_timeout: float = 0) -> int:
    """Run the control plane (and the node) in the foreground until SIGINT/SIGTERM."""
    stop = threading.Event()

    def interrupt(*_) -> None:
        again, starting = stop.is_set(), not started.is_set()
        stop.set()  # noted too, in case the exception below is swallowed (see after `running.start()`)
        if again or starting:
            raise KeyboardInterrupt  # while starting: abort the start, which cleans up after itself

    started = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    log = lambda m: print(f"[cluster] {m}", flush=True)  # noqa: E731
    if with_node:
        from tenantctl.node import LocalCluster  # the node builds on this module

        running = LocalCluster(state_dir, log=log, lock_timeout=lock_timeout)
        plane = running.control_plane
    else:
        running = plane = LocalControlPlane(state_dir, log=log)
    try:
        running.start()
        if stop.is_set():
            # Ctrl-C came during the start, but its KeyboardInterrupt was lost: raised inside a callback that
            # ignores exceptions (seen: logging's at-fork hook while a child process was being started).
            raise KeyboardInterrupt
        started.set()
        state = {"pid": os.getpid(), "api_url": plane.api_url, "kubeconfig": str(plane.kubeconfig),
                 "terraform_cli_config": str(toolchain.terraform_cli_config()), "node": with_node,
                 "start_seconds": round(running.start_seconds, 2)}
        if with_node:
            state.update(node_name=running.node_name, node_ip=running.node_ip, pod_cidr=running.pod_cidr,
                         service_cidr=running.service_cidr, cluster_dns_ip=running.cluster_dns_ip,
                         containerd_socket=str(running.node.containerd_socket))
            log(f"node {running.node_name} Ready (node IP {running.node_ip}, Pods {running.pod_cidr})")
        _state_file(state_dir).write_text(json.dumps(state, indent=2))
        print(f"[cluster] kubeconfig: {plane.kubeconfig}", flush=True)
        print(f"[cluster] try: export KUBECONFIG={plane.kubeconfig} TF_CLI_CONFIG_FILE={toolchain.terraform_cli_config()}",
              flush=True)
        print("[cluster] Ctrl-C or `tenantctl cluster down` stops it", flush=True)
        stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        running.stop()
        _state_file(state_dir).unlink(missing_ok=True)
    return 0


def _up(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    state = _read_state(state_dir)
    if state and _pid_alive(state["pid"]):
        print(f"already running (pid {state['pid']}); kubeconfig: {state['kubeconfig']}")
        return 0
    state_dir.mkdir(parents=True, exist_ok=True)
    with_node = not args.control_plane_only
    if not args.detach:
        return _serve(state_dir, with_node, args.lock_timeout)
    return _up_detached(state_dir, args.timeout + args.lock_timeout, with_node, args.lock_timeout)


def _up_detached(state_dir: Path, timeout: float, with_node: bool, lock_timeout: float) -> int:
    """Re-run `up` in the background (own session, log in the state dir); return once it is ready."""
    _state_file(state_dir).unlink(missing_ok=True)
    log_path = state_dir / "cluster-up.log"
    argv = [sys.executable, "-m", "tenantctl.cluster", "cluster", "up", "--state-dir", str(state_dir),
            "--lock-timeout", str(lock_timeout)]
    with open(log_path, "wb") as log:
        child = subprocess.Popen(argv + ([] if with_node else ["--control-plane-only"]),
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=toolchain.REPO_ROOT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _read_state(state_dir)
        if state and state.get("pid") == child.pid:
            what = "control plane and node" if with_node else "control plane"
            print(f"{what} running in the background (pid {child.pid}, log {log_path})")
            print(f"kubeconfig: {state['kubeconfig']}")
            return 0
        if child.poll() is not None:
            break
        time.sleep(0.2)
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGTERM)
    print(f"control plane failed to start; see {log_path}:\n{log_path.read_text(errors='replace')[-3000:]}",
          file=sys.stderr)
    return 1


def _down(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    state = _read_state(state_dir)
    if not state or not _pid_alive(state["pid"]):
        print("no control plane running")
        return _clean_up_after_crash(state_dir)
    os.kill(state["pid"], signal.SIGTERM)  # its handler stops the node, then etcd, apiserver and controller-manager
    deadline = time.monotonic() + 90
    while _pid_alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _pid_alive(state["pid"]):
        print(f"pid {state['pid']} did not stop in 90s", file=sys.stderr)
        return 1
    print("control plane stopped")
    if state.get("node"):
        print("node stopped: its processes, mounts, network namespaces, iptables rules, interfaces and cgroups "
              "are gone and the kernel settings it changed are restored")
    return _clean_up_after_crash(state_dir)


def _clean_up_after_crash(state_dir: Path) -> int:
    """After `cluster up` was killed outright (kill -9): its children got SIGTERM and may still be stopping,
    and a node leaves host changes behind. Stop the former, undo the latter."""
    from tenantctl import host_state
    from tenantctl.node import cleanup_crashed_node

    log = lambda m: print(f"[cluster] {m}", flush=True)  # noqa: E731
    host_state.kill_processes_mentioning((str(state_dir) + "/",), log, programs=(str(toolchain.toolchain_dir()),))
    if os.geteuid() == 0 and cleanup_crashed_node(log):
        print("cleaned up after a node that had not stopped")
    _state_file(state_dir).unlink(missing_ok=True)
    return 0


def _status(args: argparse.Namespace) -> int:
    state = _read_state(args.state_dir.resolve())
    if not state or not _pid_alive(state["pid"]):
        print("no control plane running")
        return 1
    print(json.dumps(state, indent=2))
    return 0


def register(subparsers) -> None:
    """Add `cluster up|down|status` to a CLI's argparse subparsers."""
    cluster = subparsers.add_parser("cluster", help="run a local Kubernetes cluster: control plane and one node")
    commands = cluster.add_subparsers(dest="cluster_command", required=True)
    for name, handler, help_text in (
            ("up", _up, "start it (foreground until Ctrl-C, or --detach) and print the kubeconfig path"),
            ("down", _down, "stop it and undo every change the node made to this machine"),
            ("status", _status, "show the running cluster's kubeconfig, URL and node")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                             help=f"where certificates, etcd data, logs and state live (default {DEFAULT_STATE_DIR})")
        command.set_defaults(handler=handler)
        if name == "up":
            command.add_argument("--detach", action="store_true", help="run in the background and return when ready")
            command.add_argument("--timeout", type=float, default=300, help="seconds to wait for readiness (--detach)")
            command.add_argument("--control-plane-only", action="store_true",
                                 help="no node: etcd, apiserver and controllers only (Pods stay Pending; no root needed)")
            command.add_argument("--lock-timeout", type=float, default=0,
                                 help="seconds to wait while another local node runs on this machine (default: fail)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tenantctl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (toolchain.ToolchainError, ProcessFailed, RuntimeError) as error:
        print(f"tenantctl cluster: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

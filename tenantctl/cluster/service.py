"""The local cluster as `tenantctl cluster up|down` runs it: in the foreground until SIGINT or SIGTERM, or
in the background (a detached `tenantctl cluster up`), with its state in cluster.json (state.py) for
the other commands; and stopping it, also after it was killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tenantctl.cluster import host_state
from tenantctl.cluster.control_plane import LocalControlPlane
from tenantctl.cluster.local_cluster import LocalCluster
from tenantctl.cluster.machine import cleanup_crashed_node
from tenantctl.cluster.state import pid_alive, read_state, remove_state, write_state
from tenantctl.paths import REPO_ROOT
from tenantctl.terraform.provider_mirror import terraform_cli_config
from tenantctl.terraform.toolchain import toolchain_dir


def _log(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


def serve(state_dir: Path, with_node: bool, lock_timeout: float = 0) -> int:
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
    running: LocalCluster | LocalControlPlane
    if with_node:
        running = LocalCluster(state_dir, log=_log, lock_timeout=lock_timeout)
        plane = running.control_plane
    else:
        running = plane = LocalControlPlane(state_dir, log=_log)
    try:
        running.start()
        if stop.is_set():
            # Ctrl-C came during the start, but its KeyboardInterrupt was lost: raised inside a callback that
            # ignores exceptions (seen: logging's at-fork hook while a child process was being started).
            raise KeyboardInterrupt
        started.set()
        state = {
            "pid": os.getpid(),
            "api_url": plane.api_url,
            "kubeconfig": str(plane.kubeconfig),
            "terraform_cli_config": str(terraform_cli_config()),
            "node": with_node,
            "start_seconds": round(running.start_seconds, 2),
        }
        if with_node:
            state.update(
                node_name=running.node_name,
                node_ip=running.node_ip,
                pod_cidr=running.pod_cidr,
                service_cidr=running.service_cidr,
                cluster_dns_ip=running.cluster_dns_ip,
                containerd_socket=str(running.node.containerd_socket),
            )
            _log(f"node {running.node_name} Ready (node IP {running.node_ip}, Pods {running.pod_cidr})")
        write_state(state_dir, state)
        _log(f"kubeconfig: {plane.kubeconfig}")
        _log(f"try: export KUBECONFIG={plane.kubeconfig} TF_CLI_CONFIG_FILE={terraform_cli_config()}")
        _log("Ctrl-C or `tenantctl cluster down` stops it")
        stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        running.stop()
        remove_state(state_dir)
    return 0


def start_detached(state_dir: Path, timeout: float, with_node: bool, lock_timeout: float) -> int:
    """Run `tenantctl cluster up` in the background (own session, log in the state dir); return once it is
    ready."""
    remove_state(state_dir)
    log_path = state_dir / "cluster-up.log"
    argv = [
        sys.executable,
        "-m",
        "tenantctl",
        "cluster",
        "up",
        "--state-dir",
        str(state_dir),
        "--lock-timeout",
        str(lock_timeout),
    ]
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            argv + ([] if with_node else ["--control-plane-only"]),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO_ROOT,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(state_dir)
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
    print(
        f"control plane failed to start; see {log_path}:\n{log_path.read_text(errors='replace')[-3000:]}",
        file=sys.stderr,
    )
    return 1


def stop_running(state_dir: Path) -> int:
    """Stop the `cluster up` whose state is in `state_dir` (SIGTERM: it stops the node, then the control
    plane), then clean up whatever a crash may have left."""
    state = read_state(state_dir)
    if not state or not pid_alive(state["pid"]):
        print("no control plane running")
        return clean_up_after_crash(state_dir)
    os.kill(state["pid"], signal.SIGTERM)  # its handler stops the node, then etcd, apiserver and controller-manager
    deadline = time.monotonic() + 90
    while pid_alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(state["pid"]):
        print(f"pid {state['pid']} did not stop in 90s", file=sys.stderr)
        return 1
    print("control plane stopped")
    if state.get("node"):
        print(
            "node stopped: its processes, mounts, network namespaces, iptables rules, interfaces and cgroups "
            "are gone and the kernel settings it changed are restored"
        )
    return clean_up_after_crash(state_dir)


def clean_up_after_crash(state_dir: Path) -> int:
    """After `cluster up` was killed outright (kill -9): its children got SIGTERM and may still be stopping,
    and a node leaves host changes behind. Stop the former, undo the latter."""
    host_state.kill_processes_mentioning((str(state_dir) + "/",), _log, programs=(str(toolchain_dir()),))
    if os.geteuid() == 0 and cleanup_crashed_node(_log):
        print("cleaned up after a node that had not stopped")
    remove_state(state_dir)
    return 0

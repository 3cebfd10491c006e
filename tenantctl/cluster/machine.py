"""What is machine-wide about the local node. Only one node can run on a machine (kube-proxy's and kubelet's
iptables chains and the `cni0` bridge are machine-wide): it holds NODE_LOCK while it runs, and records its
state directory in NODE_RECORD, so that after it was killed outright the next start (or `tenantctl cluster
down`) undoes its host changes from the snapshot it saved there (host_state.py). Its containerd socket is
reached through SOCKET_LINK: unix socket paths are limited to ~104 bytes, state directories (pytest's, for
one) can be longer.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from tenantctl.cluster import host_state
from tenantctl.cluster.network import BRIDGE, POD_CIDR

NODE_LOCK = Path("/run/lock/llm-tenants-node.lock")
NODE_RECORD = Path("/run/llm-tenants-node.json")  # which state dir the running node uses, for crash recovery
SOCKET_LINK = Path("/run/llm-tenants-node")  # -> <state>/containerd; one node per machine, so one fixed path
CONTAINERD_SOCKET = SOCKET_LINK / "containerd.sock"
HOST_SNAPSHOT = "host-snapshot.json"  # in the node's state directory

Log = Callable[[str], None]


class NodeLockTimeout(RuntimeError):
    """Another node kept the machine's lock for longer than we would wait."""


class NodeLock:
    """The machine's one-node lock, waited for up to `timeout` seconds."""

    def __init__(self, timeout: float, log: Log):
        self.timeout = timeout
        self.log = log
        self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        """Wait (up to the timeout) until no other node runs on this machine; a no-op when already held."""
        if self._file is not None:
            return
        NODE_LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(NODE_LOCK, "a+")
        deadline = time.monotonic() + self.timeout
        announced = False
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = read_record().get("state_dir", "unknown")
                if time.monotonic() >= deadline:
                    self._file.close()
                    self._file = None
                    raise NodeLockTimeout(
                        f"another local node is running on this machine (state {holder}); "
                        "stop it first (`tenantctl cluster down`)"
                    ) from None
                if not announced:
                    self.log(f"waiting up to {self.timeout:.0f}s for the node of {holder} to stop")
                    announced = True
                time.sleep(0.2)

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def read_record() -> dict:
    try:
        return json.loads(NODE_RECORD.read_text())
    except (OSError, ValueError):
        return {}


def write_record(state_dir: Path) -> None:
    NODE_RECORD.write_text(json.dumps({"pid": os.getpid(), "state_dir": str(state_dir)}))


def link_socket(containerd_dir: Path) -> None:
    SOCKET_LINK.unlink(missing_ok=True)
    SOCKET_LINK.symlink_to(containerd_dir)


def restore_host(snapshot: host_state.HostSnapshot, state_dir: Path, log: Log) -> None:
    """Undo the node's host changes since `snapshot`, and forget it (its record, its snapshot, its socket link)."""
    # containerd shims name the socket by its short path: they are found by that too
    host_state.restore(
        snapshot,
        state_dir,
        (POD_CIDR, BRIDGE),
        log,
        process_markers=(str(state_dir), str(SOCKET_LINK) + "/"),
        containerd_address=str(CONTAINERD_SOCKET),
    )
    if SOCKET_LINK.is_symlink():
        SOCKET_LINK.unlink()
    (state_dir / HOST_SNAPSHOT).unlink(missing_ok=True)
    NODE_RECORD.unlink(missing_ok=True)


def recover_crashed_node(log: Log) -> bool:
    """Undo the host changes of a node whose process was killed outright (its record is left behind).

    Only called with the node lock held, so the recorded node is certainly not running.
    """
    record = read_record()
    if not record:
        return False
    state_dir = Path(record["state_dir"])
    snapshot = host_state.HostSnapshot.load(state_dir / HOST_SNAPSHOT)
    if snapshot is not None:
        log(f"cleaning up after a node that did not stop (state {state_dir})")
        restore_host(snapshot, state_dir, log)
    NODE_RECORD.unlink(missing_ok=True)
    return True


def cleanup_crashed_node(log: Log) -> bool:
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

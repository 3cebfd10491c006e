"""A Docker daemon of our own, started for one job (building images, container tests) and always stopped.

Debian's `docker.io` daemon is installed by scripts/setup but never enabled system-wide.
Whatever needs a daemon starts this one: its own socket, pidfile and exec-root in a
temporary directory, and a data-root kept as a cache under
`$LLM_TENANTS_CACHE/docker/<dockerd version>/` so images and build layers survive between
runs. One daemon at a time may use that data-root: an flock next to it serialises
worktrees and CI jobs on this machine.

The daemon touches no host networking: no bridge, no iptables rules, no IP forwarding
(`--bridge=none --iptables=false`). Builds and containers use the host's network
namespace (`network_mode="host"`) and listen on loopback ports we choose. Containers get
cgroups under `llm-tenants-docker`, removed when the daemon stops.

The `docker` CLI on PATH may be newer than this daemon (API 1.41): we talk to it with the
Python docker SDK pinned to the daemon's API version.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tenantctl.paths import cache_root
from tenantctl.processes import ManagedProcess

API_VERSION = "1.41"  # Debian bookworm's docker.io 20.10
CGROUP_PARENT = "llm-tenants-docker"
CGROUP_ROOT = Path("/sys/fs/cgroup")


class DockerUnavailable(RuntimeError):
    """dockerd is not installed or did not start; the message says what to do."""


def dockerd_binary() -> str:
    binary = shutil.which("dockerd") or ("/usr/sbin/dockerd" if os.access("/usr/sbin/dockerd", os.X_OK) else None)
    if binary is None:
        raise DockerUnavailable("dockerd is not installed: run ./scripts/setup (Debian package docker.io)")
    return binary


def dockerd_version(binary: str) -> str:
    """e.g. '20.10.24+dfsg1' (the data-root cache is keyed by it)."""
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    return output.split()[2].rstrip(",")


class DockerDaemon:
    """`with DockerDaemon() as daemon: daemon.client.images.build(...)`."""

    def __init__(self, log: Callable[[str], None] | None = None, lock_timeout: float = 1800):
        self.log = log or (lambda message: None)
        self.lock_timeout = lock_timeout
        self.binary = dockerd_binary()
        self.data_root = cache_root() / "docker" / dockerd_version(self.binary)
        self.run_dir: Path | None = None
        self.process: ManagedProcess | None = None
        self._lock_file = None
        self._client = None

    @property
    def socket(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "docker.sock"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def client(self):
        """A docker SDK client for this daemon."""
        if self._client is None:
            import docker

            self._client = docker.DockerClient(base_url=self.base_url, version=API_VERSION, timeout=600)
        return self._client

    def start(self, timeout: float = 120) -> DockerDaemon:
        self._lock()
        try:
            # A short path: unix sockets are limited to 108 bytes.
            self.run_dir = Path(tempfile.mkdtemp(prefix="llmt-docker-"))
            self.data_root.mkdir(parents=True, exist_ok=True)
            self.process = ManagedProcess(
                name="dockerd",
                argv=self._argv(),
                health_url=self.base_url,
                log_path=self.run_dir / "dockerd.log",
                ready=self._answers,
            )
            self.log(f"starting dockerd (data-root {self.data_root})")
            self.process.start()
            self.process.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _argv(self) -> list[str]:
        assert self.run_dir is not None
        return [
            self.binary,
            f"--host={self.base_url}",
            f"--pidfile={self.run_dir / 'docker.pid'}",
            f"--exec-root={self.run_dir / 'exec'}",
            f"--data-root={self.data_root}",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--storage-driver=overlay2",
            "--exec-opt=native.cgroupdriver=cgroupfs",
            f"--cgroup-parent=/{CGROUP_PARENT}",
            "--log-level=warn",
        ]

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(self.client.ping())
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False

    def stop(self) -> None:
        """Stop every container we left, then the daemon; remove its sockets and cgroups. Idempotent."""
        if self.process is not None and self.process.is_running():
            try:
                for container in self.client.containers.list(all=True):
                    container.remove(force=True)
            except Exception as error:  # noqa: BLE001 - stopping must go on
                self.log(f"dockerd: could not remove containers: {error}")
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process is not None:
            self.process.stop(timeout=30)
            self.process = None
        _remove_cgroups()
        if self.run_dir is not None:
            _unmount_below(self.run_dir)
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None
        self._unlock()

    def __enter__(self) -> DockerDaemon:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _lock(self) -> None:
        self.data_root.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.data_root.parent / f"{self.data_root.name}.lock", "w")
        deadline = time.monotonic() + self.lock_timeout
        waiting_said = False
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._unlock()
                    raise DockerUnavailable(f"{self.data_root} is used by another dockerd for too long") from None
                if not waiting_said:
                    self.log(f"waiting for another dockerd using {self.data_root}")
                    waiting_said = True
                time.sleep(1)

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _remove_cgroups() -> None:
    """dockerd leaves the (empty) parent cgroup of its containers in every hierarchy."""
    if not CGROUP_ROOT.is_dir():
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        parent = hierarchy / CGROUP_PARENT
        if parent.is_dir():
            for child in sorted(parent.glob("*/"), reverse=True):
                _rmdir(child)
            _rmdir(parent)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _unmount_below(directory: Path) -> None:
    """Mounts dockerd left under its exec-root if it was killed (network namespaces, runtime state)."""
    prefix = str(directory.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for mount_point in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", mount_point], capture_output=True)

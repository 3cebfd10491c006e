"""Child processes that never outlive us: own process group, killed with the parent.

Each child starts in a new session (so one signal reaches a gunicorn master and
its workers) and with PR_SET_PDEATHSIG, so even a `kill -9` of tenantctl
leaves no orphan behind. The death signal follows the *thread* that started the
child: start (and restart) children from the main thread only.

Children start with umask 077 and their log is created 0600: whatever they write
(ledger, knowledge indexes, metrics files, Prometheus data) is readable by the owner only, and
the configs written for them (`write_private_text`, `write_private_json`) too.
The node's components are the exception (`umask=HOST_UMASK`): containerd and the kubelet
create the files containers read as other users (image layers, /etc/hosts, volumes).

Shared by local mode (tenantctl/local/), the local cluster (tenantctl/cluster/) and the image
builder's Docker daemon (tenantctl/images/docker_daemon.py).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PR_SET_PDEATHSIG = 1
PRIVATE_UMASK = 0o077
HOST_UMASK = 0o022


class ProcessFailed(RuntimeError):
    """A child exited or never became healthy; the message carries the end of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it), for services started on loopback."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _prepare_child(umask: int) -> None:
    """In the child, before exec: die with the parent, and create files with `umask`."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.umask(umask)


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    """A file for writing, created 0600 (an existing one is made 0600 too)."""
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab" if flags & os.O_APPEND else "wb")


def private_directory(path: Path) -> Path:
    """`path` (and missing parents) as a directory only its owner can enter."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def write_private_text(path: Path, text: str) -> Path:
    """Write a file only its owner can read (a key, a config holding one), in a directory only its owner can enter."""
    private_directory(path.parent)
    with open_private(path) as handle:
        handle.write(text.encode("utf-8"))
    return path


def write_private_json(path: Path, document: dict) -> Path:
    """Write a config that may hold keys: readable by the owner only."""
    return write_private_text(path, json.dumps(document, indent=2))


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    health_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path | None = None
    popen: subprocess.Popen | None = None
    ready: Callable[[], bool] | None = None  # instead of GET health_url, for services that are not HTTP
    user: str | None = None  # run as this user (PostgreSQL refuses to run as root)
    umask: int = PRIVATE_UMASK

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open_private(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND) as log:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _prepare_child(self.umask),
                user=self.user,  # applied before preexec_fn: the death signal survives the user change
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def is_running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_healthy(self, timeout: float, on_wait: Callable[[float], None] | None = None) -> None:
        """Poll the health URL until 200; fail early, with the log's tail, if the process exits."""
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if not self.is_running():
                    raise ProcessFailed(f"{self.name} exited with code {self.popen.returncode}:\n{self.log_tail()}")
                if self._is_healthy(http):
                    return
                if on_wait:
                    on_wait(time.monotonic() - started)
                time.sleep(0.2)
        raise ProcessFailed(
            f"{self.name} was not healthy at {self.health_url} after {timeout:.0f}s:\n{self.log_tail()}"
        )

    def is_healthy(self, timeout: float = 1.0) -> bool:
        """One health check, now."""
        with httpx.Client(timeout=timeout) as http:
            return self._is_healthy(http)

    def _is_healthy(self, http: httpx.Client) -> bool:
        if self.ready is not None:
            return self.ready()
        try:
            return http.get(self.health_url).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after `timeout`."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.popen.pid, signal.SIGKILL)  # stragglers, e.g. workers that ignored TERM
        self.popen.wait()

    def kill(self) -> None:
        """Simulate a crash: SIGKILL the group at once."""
        if self.popen is not None:
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_ready(process: ManagedProcess, probe: Callable[[], bool], deadline: float) -> None:
    """Poll `probe` until it is true; fail early, with the log's tail, if `process` exits (or at `deadline`)."""
    while time.monotonic() < deadline:
        if not process.is_running():
            raise ProcessFailed(f"{process.name} exited with code {process.popen.returncode}:\n{process.log_tail()}")
        try:
            if probe():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise ProcessFailed(f"{process.name} was not ready in time:\n{process.log_tail()}")

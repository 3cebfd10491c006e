"""What the local node changes on this machine, recorded before it starts and undone after it stops.

A kubelet, containerd, CNI, kube-proxy and kube-router change the host, not only their state
directory: iptables chains and rules (KUBE-*, CNI-*, our LLMT-EGRESS guard), ipsets (kube-router's
KUBE-*), network namespaces (`/run/netns/cni-*`), the `cni0` bridge and its veths, the `/kubepods`
cgroups, mounts (kubelet bind-mounts its root directory; Pod volumes, container root filesystems),
symlinks in /var/log/containers, and kernel settings (kubelet sets `kernel.panic`,
`kernel.panic_on_oops`, `vm.overcommit_memory`, ...; the bridge plugin turns on IP forwarding).

`HostSnapshot.take()` records the state before the node starts (saved as JSON in the node's
state directory, so a `tenantctl cluster down` after a crash can still use it) and
`restore(snapshot, ...)` removes exactly what appeared since and sets the kernel settings back.
Everything here is best effort and idempotent: one failing step never stops the next one.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tenantctl.cluster.network import BRIDGE, CNI_NETWORK

Log = Callable[[str], None]

# Kernel settings the node's components change (kubelet's kernel tunables; the bridge plugin's forwarding).
SYSCTLS = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.default.forwarding",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.conf.all.route_localnet",
)
IPTABLES = ("iptables", "ip6tables")
TABLES = ("filter", "nat", "mangle", "raw")
CHAIN_PREFIXES = ("KUBE-", "CNI-", "LLMT-")  # kubelet, kube-proxy, kube-router; CNI plugins; ours
IPSET_PREFIXES = ("KUBE-", "inet6:KUBE-", "kube-router")
CNI_CACHE = Path("/var/lib/cni/results")  # libcni's result cache: entries are removed by CNI DEL, not by a crash
SHIM_SOCKETS = Path("/run/containerd/s")  # containerd 1.6 puts every shim's socket here, whatever its state dir
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"
NETNS_DIR = Path("/run/netns")
CONTAINER_LOGS = Path("/var/log/containers")  # kubelet's symlinks to Pod logs (a fixed path)
# Directories a kubelet, containerd or CNI may create outside the state directory.
HOST_DIRECTORIES = (
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni",
    "/run/netns",
    "/etc/cni",
    "/opt/cni",
    "/run/containerd",
    "/var/lib/kubelet",
    "/usr/libexec/kubernetes",
)
# Files a kubelet leaves at fixed paths whatever its root directory (the device manager's socket).
KUBELET_FIXED_FILES = ("/var/lib/kubelet/device-plugins/kubelet.sock",)
MNT_DETACH = 2


def sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctls(keys: tuple[str, ...] = SYSCTLS) -> dict[str, str]:
    values = {}
    for key in keys:
        try:
            values[key] = sysctl_path(key).read_text().strip()
        except OSError:
            pass
    return values


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True)


def iptables_save(binary: str, table: str) -> list[str]:
    result = _run([f"{binary}-save", "-t", table])
    return result.stdout.splitlines() if result.returncode == 0 else []


def chains_and_rules(lines: list[str]) -> tuple[set[str], list[str]]:
    chains = {line[1:].split()[0] for line in lines if line.startswith(":")}
    rules = [line for line in lines if line.startswith("-A ")]
    return chains, rules


def ipset_names() -> set[str]:
    result = _run(["ipset", "list", "-n"])
    return set(result.stdout.split()) if result.returncode == 0 else set()


def link_names() -> set[str]:
    result = _run(["ip", "-o", "link", "show"])
    return {line.split(":")[1].strip().split("@")[0] for line in result.stdout.splitlines() if ":" in line}


def netns_names() -> set[str]:
    try:
        return {entry.name for entry in NETNS_DIR.iterdir()}
    except OSError:
        return set()


def kubepods_cgroups() -> set[str]:
    return {str(path) for path in CGROUP_ROOT.glob(f"*/{KUBEPODS}")}


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below `directory`, deepest first."""
    prefix = str(directory.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


@dataclass
class HostSnapshot:
    sysctls: dict[str, str] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)  # "iptables/filter" -> chain names
    rules: dict[str, list[str]] = field(default_factory=dict)
    ipsets: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)  # which of HOST_DIRECTORIES existed

    @classmethod
    def take(cls) -> HostSnapshot:
        snapshot = cls(
            sysctls=read_sysctls(),
            ipsets=sorted(ipset_names()),
            links=sorted(link_names()),
            netns=sorted(netns_names()),
            cgroups=sorted(kubepods_cgroups()),
            directories=[d for d in HOST_DIRECTORIES if os.path.lexists(d)],
        )
        for binary in IPTABLES:
            for table in TABLES:
                chains, rules = chains_and_rules(iptables_save(binary, table))
                snapshot.chains[f"{binary}/{table}"] = sorted(chains)
                snapshot.rules[f"{binary}/{table}"] = rules
        return snapshot

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> HostSnapshot | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


# -- restoring ---------------------------------------------------------------------------------


def restore(
    snapshot: HostSnapshot,
    state_dir: Path,
    markers: tuple[str, ...],
    log: Log,
    process_markers: tuple[str, ...] = (),
    containerd_address: str = "",
) -> None:
    """Undo what appeared since `snapshot`. `markers` are strings (Pod CIDR, bridge) that identify
    the node's iptables rules in built-in chains; a process whose command line holds one of
    `process_markers` (default: the state directory) is the node's; `containerd_address` is the
    node's containerd socket (its shims' sockets are named after it)."""
    tasks = containerd_tasks(state_dir)
    container_ids = {container_id for _, container_id in tasks}
    for step in (
        lambda: kill_processes_mentioning(process_markers or (str(state_dir),), log),
        lambda: kill_kubepods(snapshot, log),
        lambda: unmount_all(state_dir, log),
        lambda: delete_netns(snapshot, log),
        lambda: delete_links(snapshot, log),
        lambda: remove_iptables(snapshot, markers, log),
        lambda: destroy_ipsets(snapshot, log),
        lambda: remove_cgroups(snapshot, log),
        lambda: remove_container_log_links(state_dir, log),
        lambda: remove_cni_cache(container_ids, log),
        lambda: remove_shim_sockets(containerd_address, tasks, log),
        lambda: remove_created_directories(snapshot, log),
        lambda: restore_sysctls(snapshot, log),
    ):
        try:
            step()
        except Exception as error:  # keep going: the next step may still clean up something
            log(f"cleanup step failed: {error!r}")


def kill_processes_mentioning(texts: tuple[str, ...], log: Log, programs: tuple[str, ...] = ()) -> None:
    """SIGKILL leftover processes started for this node (containerd shims carry its socket path); with
    `programs`, only those whose executable path starts with one of them."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        cmdline = b" ".join(argv).decode(errors="replace")
        if programs and not argv[0].decode(errors="replace").startswith(programs):
            continue
        if any(text in cmdline for text in texts):
            log(f"killing leftover process {entry.name}: {cmdline[:120]}")
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _cgroup_tree(root: Path) -> list[Path]:
    """All cgroup directories under `root`, deepest first."""
    return sorted(
        (path for path in [root, *root.rglob("*")] if path.is_dir()), key=lambda p: len(p.parts), reverse=True
    )


def kill_kubepods(snapshot: HostSnapshot, log: Log) -> None:
    """Containers outlive a killed shim: SIGKILL every process still in the node's Pod cgroups."""
    for root in kubepods_cgroups() - set(snapshot.cgroups):
        for directory in _cgroup_tree(Path(root)):
            try:
                pids = (directory / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                log(f"killing Pod process {pid} in {directory}")
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def unmount_all(state_dir: Path, log: Log) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    for _ in range(3):  # a detached parent can expose a mount below it again (propagation): repeat
        points = mounts_under(state_dir)
        if not points:
            return
        for point in points:
            if libc.umount2(point.encode(), MNT_DETACH) != 0:
                log(f"umount {point}: {os.strerror(ctypes.get_errno())}")


def delete_netns(snapshot: HostSnapshot, log: Log) -> None:
    for name in sorted(netns_names() - set(snapshot.netns)):
        if name.startswith("cni-"):
            result = _run(["ip", "netns", "delete", name])
            if result.returncode != 0:
                log(f"ip netns delete {name}: {result.stderr.strip()}")


def delete_links(snapshot: HostSnapshot, log: Log) -> None:
    new = link_names() - set(snapshot.links)
    attached = _run(["ip", "-o", "link", "show", "master", BRIDGE]).stdout.splitlines() if BRIDGE in new else []
    ports = {line.split(":")[1].strip().split("@")[0] for line in attached if ":" in line}
    for name in sorted(ports & new) + ([BRIDGE] if BRIDGE in new else []):
        result = _run(["ip", "link", "delete", name])
        if result.returncode != 0 and "Cannot find device" not in result.stderr:
            log(f"ip link delete {name}: {result.stderr.strip()}")


def _jump_target(rule: str) -> str | None:
    tokens = rule.split()
    for flag in ("-j", "-g"):
        if flag in tokens[:-1]:
            return tokens[tokens.index(flag) + 1]
    return None


def remove_iptables(snapshot: HostSnapshot, markers: tuple[str, ...], log: Log) -> None:
    for binary in IPTABLES:
        for table in TABLES:
            key = f"{binary}/{table}"
            chains, rules = chains_and_rules(iptables_save(binary, table))
            before_chains, before_rules = set(snapshot.chains.get(key, [])), set(snapshot.rules.get(key, []))
            ours = {c for c in chains if c.startswith(CHAIN_PREFIXES) and c not in before_chains}
            deletions = []
            for rule in rules:
                chain = rule.split()[1]
                if chain in ours or rule in before_rules:
                    continue
                if _jump_target(rule) in ours or any(marker in rule for marker in markers + CHAIN_PREFIXES):
                    deletions.append("-D" + rule[2:])
            if not ours and not deletions:
                continue
            script = [
                f"*{table}",
                *deletions,
                *(f"-F {c}" for c in sorted(ours)),
                *(f"-X {c}" for c in sorted(ours)),
                "COMMIT",
                "",
            ]
            result = _run([f"{binary}-restore", "--noflush"], "\n".join(script))
            if result.returncode != 0:  # e.g. a rule changed meanwhile: one command at a time
                log(f"{binary}-restore ({table}) failed, removing one by one: {result.stderr.strip()[:300]}")
                for line in script[1:-2]:
                    _run([binary, "-t", table, *shlex.split(line)])


def destroy_ipsets(snapshot: HostSnapshot, log: Log) -> None:
    for name in sorted(ipset_names() - set(snapshot.ipsets)):
        if name.startswith(IPSET_PREFIXES):
            result = _run(["ipset", "destroy", name])
            if result.returncode != 0:
                log(f"ipset destroy {name}: {result.stderr.strip()}")


def remove_cgroups(snapshot: HostSnapshot, log: Log) -> None:
    for root in kubepods_cgroups() - set(snapshot.cgroups):
        for _ in range(50):  # processes killed a moment ago leave their cgroup asynchronously
            for directory in _cgroup_tree(Path(root)):
                try:
                    directory.rmdir()
                except OSError:
                    pass
            if not Path(root).exists():
                break
            time.sleep(0.1)
        else:
            log(f"could not remove cgroup {root}")


def remove_container_log_links(state_dir: Path, log: Log) -> None:
    prefix = str(state_dir.resolve())
    try:
        entries = list(CONTAINER_LOGS.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink() and os.readlink(entry).startswith(prefix):
            entry.unlink(missing_ok=True)


def containerd_tasks(state_dir: Path) -> set[tuple[str, str]]:
    """(namespace, id) of the containers and Pod sandboxes the node's containerd still has tasks for."""
    tasks = state_dir / "containerd" / "state" / "io.containerd.runtime.v2.task"
    return {(entry.parent.name, entry.name) for entry in tasks.glob("*/*")} if tasks.is_dir() else set()


def remove_cni_cache(container_ids: set[str], log: Log) -> None:
    """Cached CNI results of the node's Pods (left when the Pods were not torn down through CNI):
    `<network>-<container id>-<interface>`, for our network and for CRI's loopback network."""
    for entry in list(CNI_CACHE.glob("*")):
        network_and_id = entry.name.rsplit("-", 1)[0]
        if network_and_id.startswith(f"{CNI_NETWORK}-") or network_and_id.rsplit("-", 1)[-1] in container_ids:
            entry.unlink(missing_ok=True)


def remove_shim_sockets(containerd_address: str, tasks: set[tuple[str, str]], log: Log) -> None:
    """Sockets of shims that were killed: containerd 1.6 names them sha256(address/namespace/id)."""
    for namespace, container_id in tasks if containerd_address else ():
        digest = hashlib.sha256(f"{containerd_address}/{namespace}/{container_id}".encode()).hexdigest()
        (SHIM_SOCKETS / digest).unlink(missing_ok=True)


def remove_created_directories(snapshot: HostSnapshot, log: Log) -> None:
    """Directories that appeared since the snapshot, when they hold nothing but empty directories (and
    the files our kubelet leaves at fixed paths)."""
    for directory in HOST_DIRECTORIES:
        path = Path(directory)
        if directory in snapshot.directories or not path.is_dir() or path.is_symlink():
            continue
        for leftover in KUBELET_FIXED_FILES:
            if leftover.startswith(directory + "/") and os.path.lexists(leftover):
                try:
                    os.unlink(leftover)
                except OSError as error:
                    log(f"rm {leftover}: {error}")
        if any(not p.is_dir() or p.is_symlink() for p in path.rglob("*")):
            log(f"leaving {directory}: something else put files there")
            continue
        for sub in sorted([path, *path.rglob("*")], key=lambda p: len(p.parts), reverse=True):
            try:
                sub.rmdir()
            except OSError as error:
                log(f"rmdir {sub}: {error}")


def restore_sysctls(snapshot: HostSnapshot, log: Log) -> None:
    current = read_sysctls(tuple(snapshot.sysctls))
    for key, value in snapshot.sysctls.items():
        if current.get(key) != value:
            try:
                sysctl_path(key).write_text(value + "\n")
            except OSError as error:
                log(f"restoring {key}={value}: {error}")

